"""A trainable model built by walking the `convcli.networks.report.Report` of a spec.

The report already holds every layer's input and output shape, blocks expanded into their
`Residual` and `Concat` containers: the builder reads shapes from it and derives none itself.
Parameters are named by their path, ``"3.w"`` or ``"4.body.0.gamma"``, which is also how the
state dict (weights and batch norm statistics) is keyed in a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from convcli.errors import TrainingError
from convcli.networks import spec as S
from convcli.networks.report import LayerInfo, Report, walk
from convcli.nn import layers as L
from convcli.nn import memory
from convcli.nn.loss import softmax
from convcli.threads import map_slices

RELU_FAMILY = ("relu", "relu6", "leakyrelu")


@dataclass
class Trace:
    """Each layer's output in a forward and the gradient arriving at that output in the backward,
    by layer; filled while `Model.traced` is active."""

    outputs: dict[L.Layer, np.ndarray] = field(default_factory=dict)
    grads: dict[L.Layer, np.ndarray] = field(default_factory=dict)


class Sequential(L.Layer):
    """Layers applied one after the other; ``infos`` are the report's entries they were built from."""

    trace: Trace | None = None

    def __init__(self, layers: list[L.Layer], infos: tuple[LayerInfo, ...] = ()) -> None:
        super().__init__()
        self.layers, self.infos = layers, infos

    def forward(self, x, train, keep=None):
        for layer in self.layers:
            x = layer.forward(x, train, keep)
            if self.trace is not None:
                self.trace.outputs[layer] = x
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            if self.trace is not None:
                self.trace.grads[layer] = dy
            dy = layer.backward(dy)
        return dy

    def children(self) -> Iterator[tuple[str, L.Layer]]:
        return ((str(i), layer) for i, layer in enumerate(self.layers))


class Residual(L.Layer):
    """``act(body(x) + shortcut(x))``; without a shortcut, ``act(body(x))``."""

    def __init__(self, body: Sequential, shortcut: Sequential | None, act: str | None) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut
        self.act = L.Activation(act) if act else None

    def forward(self, x, train, keep=None):
        y = self.body.forward(x, train, keep)
        if self.shortcut is None:
            return self.act.forward(y, train, keep) if self.act else y
        shortcut = self.shortcut.forward(x, train, keep)
        if L.keeps(train, keep) or np.may_share_memory(y, x) or np.may_share_memory(y, shortcut):
            y = add([y, shortcut])
            return self.act.forward(y, train, keep) if self.act else y
        # no backward to come, and the body's output is its own: the sum and a ReLU in its place
        y += shortcut
        if self.act and self.act.name in L.FUSED_ACTIVATIONS:
            return np.maximum(y, 0, out=y) if self.act.name == "relu" else np.clip(y, 0, 6, out=y)
        return self.act.forward(y, train, keep) if self.act else y

    def backward(self, dy):
        if self.act:
            dy = self.act.backward(dy)
        dx = self.body.backward(dy)
        if self.shortcut is not None:
            dx = add([dx, self.shortcut.backward(dy)])
        return dx

    def children(self) -> Iterator[tuple[str, L.Layer]]:
        yield "body", self.body
        if self.shortcut is not None:
            yield "shortcut", self.shortcut


class Concat(L.Layer):
    """Parallel branches on the same input, concatenated along channels."""

    def __init__(self, branches: list[Sequential]) -> None:
        super().__init__()
        self.branches = branches

    def forward(self, x, train, keep=None):
        outs = [branch.forward(x, train, keep) for branch in self.branches]
        self._cache = np.cumsum([o.shape[1] for o in outs])[:-1] if L.keeps(train, keep) else None
        y = np.empty((len(x), sum(o.shape[1] for o in outs), *outs[0].shape[2:]), dtype=outs[0].dtype)
        map_slices(lambda s: np.concatenate([o[s] for o in outs], axis=1, out=y[s]), len(x), 2 * y.size)
        return y

    def backward(self, dy):
        parts = np.split(dy, self._kept(), axis=1)
        grads = [branch.backward(d) for branch, d in zip(self.branches, parts)]
        return grads[0] if len(grads) == 1 else add(grads)

    def children(self) -> Iterator[tuple[str, L.Layer]]:
        return ((f"branch{i}", b) for i, b in enumerate(self.branches, 1))


def add(arrays: list[np.ndarray]) -> np.ndarray:
    """The elementwise sum of same-shaped batches, left to right, in a new array, per batch slice
    (`convcli.threads.map_slices`): a residual sum, or the gradients of a block's branches."""
    total = np.empty_like(arrays[0])

    def run(s):
        np.add(arrays[0][s], arrays[1][s], out=total[s])
        for a in arrays[2:]:
            total[s] += a[s]

    map_slices(run, len(total), total.size * (len(arrays) + 1))
    return total


class Model:
    """The layers of a network, their parameters by name, and train/eval mode.

    ``forward`` returns logits; a final ``softmax`` in the spec is folded into the loss (and into
    `probabilities`), as frameworks do.
    """

    def __init__(self, root: Sequential, report: Report) -> None:
        self.root, self.report = root, report
        self.training = True
        self.inference_only = False  # `convcli.nn.fold.fold_batch_norm`'s model

    def train(self) -> None:
        if self.inference_only:
            raise TrainingError("a model with its batch norm folded (for inference) cannot be trained")
        self.training = True

    def eval(self) -> None:
        self.training = False

    def forward(self, x: np.ndarray, keep: bool | None = None) -> np.ndarray:
        """Logits for ``x``; the layers keep what the backward needs when ``keep`` (by default in
        training mode only: `convcli.nn.layers`)."""
        return self.root.forward(x, self.training, keep)

    def backward(self, dlogits: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Gradients into every layer; the input's gradient is returned unless ``input_grad`` is
        False (training never needs it, and a first convolution then skips a third of its work)."""
        first = self.root.layers[0] if self.root.layers else None
        if isinstance(first, L.Conv2d):
            first.input_grad = input_grad  # then it returns None, and so does this
        return self.root.backward(dlogits)

    def reseed(self, seed: int, epoch: int) -> None:
        """Give every dropout layer its own generator for ``epoch``, seeded by ``(seed, epoch, i)``,
        so that a run resumed at an epoch draws the masks an uninterrupted one would."""
        dropouts = (layer for _, layer in self.named_layers() if isinstance(layer, L.Dropout))
        for i, layer in enumerate(dropouts):
            layer.rng = np.random.default_rng((seed, epoch, i))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.forward(x))

    def named_layers(self) -> Iterator[tuple[str, L.Layer]]:
        yield from _named(self.root, "")

    def walk(self) -> Iterator[tuple[str, LayerInfo, L.Layer]]:
        """Every layer with its path (``"4.body.0"``) and the report entry it was built from,
        blocks before their inner layers, depth first (as `convcli.networks.report.walk`)."""
        yield from _walk(self.root, "")

    @contextmanager
    def traced(self) -> Iterator[Trace]:
        """A `Trace` of the forwards and backwards run inside the block (for pictures of what a
        trained network computes: activation maps, Grad-CAM)."""
        trace = Trace()
        seqs = list(sequences(self.root))
        for seq in seqs:
            seq.trace = trace
        try:
            yield trace
        finally:
            for seq in seqs:
                seq.trace = None

    def parameters(self) -> list[tuple[str, L.Layer, str]]:
        """``(name, layer, key)`` for every trained array, in a fixed order."""
        return [(f"{path}{key}", layer, key) for path, layer in self.named_layers() for key in layer.params]

    def n_params(self) -> int:
        return sum(layer.params[key].size for _, layer, key in self.parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by name (copies)."""
        state = {}
        for path, layer in self.named_layers():
            for key, value in {**layer.params, **layer.buffers}.items():
                state[f"{path}{key}"] = value.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set parameters and buffers from ``state``; names and shapes must match exactly."""
        own = self.state_dict()
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or extra:
            raise TrainingError(f"the weights do not fit this network: missing {missing[:3]}, unexpected {extra[:3]}")
        for path, layer in self.named_layers():
            for store in (layer.params, layer.buffers):
                for key in store:
                    value = state[f"{path}{key}"]
                    if value.shape != store[key].shape:
                        raise TrainingError(
                            f"weight '{path}{key}' has shape {value.shape}, the network needs {store[key].shape}"
                        )
                    store[key] = np.asarray(value, np.float32).copy()


def _named(layer: L.Layer, prefix: str) -> Iterator[tuple[str, L.Layer]]:
    if hasattr(layer, "children"):
        for name, child in layer.children():
            yield from _named(child, f"{prefix}{name}.")
    else:
        yield prefix, layer


def _walk(seq: Sequential, prefix: str) -> Iterator[tuple[str, LayerInfo, L.Layer]]:
    for i, (info, layer) in enumerate(zip(seq.infos, seq.layers, strict=True)):
        yield f"{prefix}{i}", info, layer
        for name, child in layer.children() if hasattr(layer, "children") else ():
            yield from _walk(child, f"{prefix}{i}.{name}.")


def sequences(seq: Sequential) -> Iterator[Sequential]:
    """``seq`` and every `Sequential` inside it (blocks' bodies, shortcuts and branches)."""
    yield seq
    for layer in seq.layers:
        for _, child in layer.children() if hasattr(layer, "children") else ():
            yield from sequences(child)


def trainable_layers(report: Report) -> tuple[LayerInfo, ...]:
    """The report's layers that become the model (a final softmax is folded into the loss), after
    checking, without allocating any weights, that every one of them can be trained.

    Raises `TrainingError` naming the first layer the numpy layer set cannot train.
    """
    infos = memory.scored_layers(report)
    if not infos or len(infos[-1].out_shape) != 1 and infos[-1].out_shape[:2] != (1, 1):
        raise TrainingError(
            "the network must end in class scores (e.g. 'flatten fc:10' or 'gap flatten fc:10'), "
            f"but it ends in {'x'.join(map(str, report.output_shape))}"
        )
    for info in walk(infos):
        _check(info)
    return infos


def build_model(report: Report, seed: int = 0, fuse: bool = True) -> Model:
    """The trainable model of ``report``, weights drawn with ``seed``.

    He initialisation when the network uses a ReLU-family activation, Glorot otherwise. ``fuse``
    has a batch norm apply the ReLU or ReLU6 that follows it (`convcli.nn.layers.BatchNorm.act`;
    the activation layer stays, as the identity: see `convcli.nn.memory.fuses_activation`) and
    runs any other ReLU before max pooling as pool then ReLU (see
    `convcli.nn.memory.runs_pool_first`); without it every layer runs in the spec's order, so that
    each layer's output is the one the spec describes.
    Raises `TrainingError` naming the first layer the numpy layer set cannot train.

    Examples
    --------
    >>> from convcli.networks.report import analyse
    >>> from convcli.networks.words import parse_words
    >>> model = build_model(analyse(parse_words("8x8x1 conv:4,f=3 relu flatten fc:10".split())))
    >>> model.forward(np.zeros((2, 1, 8, 8), np.float32)).shape
    (2, 10)
    """
    infos = trainable_layers(report)
    names = {info.layer.name for info in walk(infos) if isinstance(info.layer, S.Activation)}
    scheme = "he" if names & set(RELU_FAMILY) else "glorot"
    rng = np.random.default_rng(seed)
    return Model(_sequence(infos, rng, scheme, fuse), report)


SUPPORTED = (
    S.Conv,
    S.DWConv,
    S.Pool,
    S.GlobalPool,
    S.AdaptivePool,
    S.BatchNorm,
    S.Activation,
    S.Dropout,
    S.Flatten,
    S.FC,
    S.Residual,
    S.Concat,
)


def _check(info: LayerInfo) -> None:
    layer = info.layer
    act = layer.name if isinstance(layer, S.Activation) else getattr(layer, "act", None)
    if act is not None and act not in L.ACTIVATIONS:
        raise TrainingError(
            f"layer '{info.word}': activation '{act}' cannot be trained by convcli's numpy "
            f"layers (supported: {', '.join(L.ACTIVATIONS)}; softmax only as the last layer)"
        )
    h, w = info.in_shape[:2] if len(info.in_shape) == 3 else (0, 0)
    unequal = isinstance(layer, S.AdaptivePool) and (h % layer.size or w % layer.size or h != w)
    if not isinstance(layer, SUPPORTED) or getattr(layer, "table", None) is not None or unequal:
        raise TrainingError(
            f"layer '{info.word}' ({_why(info)}) cannot be trained by convcli's numpy layers; "
            "supported: conv, dwconv, maxpool, avgpool, gap, gmp, adaptivepool (equal windows), "
            "bn, dropout, flatten, fc, relu, relu6, leakyrelu, tanh, sigmoid, swish, and the "
            "blocks built from them"
        )


def _sequence(infos, rng, scheme, fuse) -> Sequential:
    order = memory.run_order(infos, fuse)  # a ReLU before max pooling runs after it
    layers = [_build(info, rng, scheme, fuse) for info in order]
    for i in memory.fused_positions(order, fuse):  # one pass less each way, see L.BatchNorm
        bn, act = layers[i - 1], layers[i]
        assert isinstance(bn, L.BatchNorm) and isinstance(act, L.Activation)
        bn.act, act.fused = act.name, True
    return Sequential(layers, tuple(order))


def _build(info: LayerInfo, rng: np.random.Generator, scheme: str, fuse: bool) -> L.Layer:
    """The layer for ``info``, which `_check` has accepted."""
    layer = info.layer
    if isinstance(layer, S.Residual):
        branches = dict(info.children)
        shortcut = _sequence(branches["shortcut"], rng, scheme, fuse) if "shortcut" in branches else None
        return Residual(_sequence(branches["body"], rng, scheme, fuse), shortcut, layer.act)
    if isinstance(layer, S.Concat):
        return Concat([_sequence(branch, rng, scheme, fuse) for _, branch in info.children])
    c_in = info.in_shape[-1]
    if isinstance(layer, S.Conv):
        return L.Conv2d(
            c_in,
            layer.channels,
            layer.f,
            rng,
            stride=layer.s,
            padding=layer.p,
            dilation=layer.d,
            groups=layer.g,
            bias=layer.bias,
            init=scheme,
        )
    if isinstance(layer, S.DWConv):
        return L.Conv2d(
            c_in,
            c_in * layer.m,
            layer.f,
            rng,
            stride=layer.s,
            padding=layer.p,
            dilation=layer.d,
            groups=c_in,
            bias=layer.bias,
            init=scheme,
        )
    if isinstance(layer, S.Pool):
        return L.Pool2d(
            layer.f,
            stride=layer.stride,
            padding=layer.p,
            ceil=layer.ceil,
            mode=layer.kind,
            count_include_pad=layer.count_pad,
        )
    if isinstance(layer, S.GlobalPool):
        return L.GlobalPool2d(layer.kind)
    if isinstance(layer, S.AdaptivePool):
        # equal windows: plain pooling with f = s = H / size
        f = info.in_shape[0] // layer.size
        return L.Pool2d(f, stride=f, mode=layer.kind)
    if isinstance(layer, S.BatchNorm):
        return L.BatchNorm(c_in, layer.eps)
    if isinstance(layer, S.Activation):
        return L.Activation(layer.name)
    if isinstance(layer, S.Dropout):
        return L.Dropout(layer.rate, rng)
    if isinstance(layer, S.Flatten):
        return L.Flatten()
    # fc, the last kind `_check` accepts; a (1, 1, C) input is flattened by the layer itself
    assert isinstance(layer, S.FC), layer
    return L.Linear(c_in, layer.units, rng, bias=layer.bias, init=scheme)


def _why(info: LayerInfo) -> str:
    layer = info.layer
    if isinstance(layer, S.Conv):
        return f"sparse connection table={layer.table}"
    if isinstance(layer, S.AdaptivePool):
        return (
            f"input {info.in_shape[0]}x{info.in_shape[1]} does not split into equal {layer.size}x{layer.size} windows"
        )
    return info.kind
