"""How much memory convcli's numpy layers take for a network, from its report's shapes alone.

The estimate follows what the layers of `convcli.nn.layers` and the containers of
`convcli.nn.model` really keep between their forward and their backward (``layer._cache``), op
by op (`convcli.ops.footprint` for convolution and pooling): the same engine, the same columns,
masks and statistics, every buffer counted once even when several caches hold it (a ReLU keeps
its output, which the next layer keeps as its input). tests/nn/test_memory.py runs a forward of
every digit network and checks each layer's number against the ``nbytes`` its cache holds, so a
change to a cache that this module does not follow fails a test. No numpy here: ``convcli params
--memory`` answers for a 224x224 ResNet-50 without loading it.

Conventions, for a batch of N images of float32 (4 bytes a number):

- *weights*: parameters and batch norm running statistics; a training step adds the gradients
  (one per trainable parameter) and the optimiser's state (`convcli.nn.choices.STATE_COPIES`
  copies of the parameters: SGD none, momentum one, Adam two).
- *activations*: each layer's output for the batch, as torchinfo's "forward pass size" counts
  them (a view, such as flatten's, counts like any other output).
- *kept*: what the forward leaves in the caches for the backward, each buffer once. Nothing frees
  a cache after the backward either, so it is held for the whole step and between steps.
- *transient*: the most a single layer allocates at once beyond the caches, the largest over the
  layers: its forward (output and work arrays, while the previous step's cache of that layer is
  still alive) or its backward (the incoming and outgoing gradients and the work arrays between).
- *training peak* = weights + gradients + optimiser state + kept (training) + transient.
- *inference peak* = weights + the largest evaluation forward of a layer: its input, work arrays
  and output (and, inside a block, the block's input, which its shortcut or other branches still
  read). An evaluation forward keeps nothing for a backward (`convcli.nn.layers`), so inference
  holds a layer's arrays at a time, not the network's.

Layers convcli cannot train (LeNet-5-1998's subsampling and RBF, transposed convolution, a
sparse connection table, PReLU, the scale block of an ONNX model) are counted as keeping their
input, as frameworks do, and the estimate says it is not exact.
"""

from __future__ import annotations

from math import prod
from typing import NamedTuple

from convcli.networks import spec as S
from convcli.networks.report import LayerInfo, Report
from convcli.nn.choices import STATE_COPIES
from convcli.ops.choices import FUSED_ACTIVATIONS
from convcli.ops.footprint import Footprint, conv_footprint, conv_work, global_pool_footprint, pool_footprint
from convcli.shapes import conv_axis, pool_axis
from convcli.threads import slices_for

ITEMSIZE = 4
"""Bytes per number: float32."""
CONVENTION = (
    "float32; training peak = weights + gradients + optimiser state + what the forward keeps for the "
    "backward + the largest layer's work arrays; inference peak = weights + the largest layer's input, "
    "work arrays and output (an evaluation forward keeps nothing for a backward)"
)
"""The conventions in one line, for the table's footer and the JSON."""
CHEAP_ACTIVATIONS = ("relu", "relu6", "leakyrelu", "tanh")
"""Activations whose forward is one numpy call; the others (sigmoid, swish) make work arrays."""


class LayerMemory(NamedTuple):
    """One row: bytes for the batch. ``number`` is the row's index in ``convcli params`` (inner
    layers ``4.b1``), ``path`` the layer's name in the model (``"3.body.0"``, as its weights are
    named); a block's numbers include its layers'.

    ``cached``: what this layer's own cache holds (views of its input included; for a block only
    what the block itself keeps: its activation's input and output, or concat's offsets).
    ``kept``: what this row adds to the caches that no earlier row holds: the rows' ``kept``
    (blocks' children not counted twice) add up to `Memory.kept`.
    """

    number: str
    path: str
    word: str
    depth: int
    params: int
    state: int
    output: int
    cached: int
    kept: int
    transient: int
    exact: bool = True


class Memory(NamedTuple):
    """The estimate for a network, a batch size and an optimiser; see the module's conventions."""

    batch_size: int
    optimizer: str
    layers: tuple[LayerMemory, ...]
    weights: int
    grads: int
    state: int
    input: int
    kept: int
    transient: int
    transient_eval: int

    @property
    def activations(self) -> int:
        """The input and every top-level layer's output (torchinfo's forward pass size)."""
        return self.input + sum(row.output for row in self.layers if not row.depth)

    @property
    def training_peak(self) -> int:
        return self.weights + self.grads + self.state + self.kept + self.transient

    @property
    def inference_peak(self) -> int:
        return self.weights + self.transient_eval

    @property
    def exact(self) -> bool:
        """Whether every layer is one convcli's numpy layers train (else some are estimated)."""
        return all(row.exact for row in self.layers)


def scored_layers(report: Report) -> tuple[LayerInfo, ...]:
    """The report's layers a model is built from: a final softmax is folded into the loss."""
    infos = report.layers
    if infos and isinstance(infos[-1].layer, S.Activation) and infos[-1].layer.name == "softmax":
        return infos[:-1]
    return infos


def runs_pool_first(first: S.Layer, second: S.Layer, fuse: bool = True) -> bool:
    """Whether the model runs ``first`` then ``second`` as ``second`` then ``first``: a ReLU
    before max pooling (see `convcli.nn.model.build_model`'s ``fuse``).

    ReLU is monotone, so ``maxpool(relu(x)) == relu(maxpool(x))``, and the gradients agree too:
    both reach the window's first maximum, scaled by 1 where it is positive, and are 0 in a window
    with nothing positive. Pooling first runs the ReLU on a quarter of the values (2x2 windows), as
    frameworks fuse them. Neither layer has weights, so the parameter names do not change.
    """
    relu = isinstance(first, S.Activation) and first.name == "relu"
    pool = isinstance(second, (S.Pool, S.AdaptivePool)) and second.kind == "max"
    return fuse and relu and pool


def fuses_activation(first: S.Layer, second: S.Layer, fuse: bool = True) -> bool:
    """Whether batch norm ``first`` applies the activation ``second`` itself: a ReLU or ReLU6
    right after it, with ``fuse``. The activation layer stays in the model, as the identity, so
    that the layers and their names are the spec's."""
    if not (fuse and isinstance(first, S.BatchNorm) and isinstance(second, S.Activation)):
        return False
    return second.name in FUSED_ACTIVATIONS


def run_order(infos: tuple[LayerInfo, ...], fuse: bool = True) -> list[LayerInfo]:
    """``infos`` in the order the model runs them: `runs_pool_first` swaps applied, except to a
    ReLU its batch norm applies (`fuses_activation`), which is cheaper still."""
    order = list(infos)
    fused = {i + 1 for i in range(len(order) - 1) if fuses_activation(order[i].layer, order[i + 1].layer, fuse)}
    for i in range(len(order) - 1):
        if i not in fused and runs_pool_first(order[i].layer, order[i + 1].layer, fuse):
            order[i], order[i + 1] = order[i + 1], order[i]
    return order


def fused_positions(order: list[LayerInfo], fuse: bool = True) -> set[int]:
    """The positions in a `run_order` of the activations their batch norm applies."""
    return {i + 1 for i in range(len(order) - 1) if fuses_activation(order[i].layer, order[i + 1].layer, fuse)}


def estimate(
    report: Report, batch_size: int = 1, optimizer: str = "adam", state_copies: int | None = None, fuse: bool = True
) -> Memory:
    """The memory the model of ``report`` takes for batches of ``batch_size``, trained with
    ``optimizer`` (``state_copies`` overrides its `STATE_COPIES`).

    >>> from convcli.networks.words import parse_words
    >>> from convcli.networks.report import analyse
    >>> m = estimate(analyse(parse_words("4x4x1 flatten fc:10".split())), 2, "sgd")
    >>> m.weights, m.activations, m.kept  # fc keeps its input, a view of the batch
    (680, 336, 128)
    """
    copies = STATE_COPIES[optimizer] if state_copies is None else state_copies
    infos = scored_layers(report)
    rows: list[LayerMemory] = []
    x = _Buffer(batch_size * prod(report.input_shape) * ITEMSIZE)
    _, kept, transient = _sequence(infos, x, batch_size, True, copies, fuse, rows, "", "", 0)
    _, kept_eval, transient_eval = _sequence(infos, _Buffer(x.nbytes), batch_size, False, copies, fuse, [], "", "", 0)
    assert kept_eval == 0, kept_eval  # evaluation keeps nothing
    trainable = sum(info.params for info in infos)
    weights = sum(info.params + info.frozen + info.buffers for info in infos)
    largest = max((_largest_param(info) for info in infos), default=0) * ITEMSIZE
    optimiser_work = largest * (1 + 2 * copies)  # the update of the largest parameter
    return Memory(
        batch_size,
        optimizer,
        tuple(rows),
        weights * ITEMSIZE,
        trainable * ITEMSIZE,
        copies * trainable * ITEMSIZE,
        x.nbytes,
        kept,
        max(transient, optimiser_work),
        transient_eval,
    )


INFERENCE_WORK_BYTES = 16 * 2**20
"""The most one layer of an inference forward should hold at once (`Memory.inference_peak` less
the weights). Arrays that stay in the processor's caches make small batches the fastest: on a
Xeon with 2 MiB of L2 a core, the digit networks' evaluation (batch norm folded, one thread) ran
1.6x (LeNet-5) to 2.7x (mnist-cnn) faster at 8 MiB's batch (8 to 64 images) than at 512. The
batch is split over the cores (`convcli.threads`; `convcli.training.loop.predict_logits` runs each
slice through the whole network in one thread), each core holding half of it on 2: 16
MiB's batch, twice 8 MiB's, evaluated faster with 2 threads on a 2-core Xeon with 4 MiB of L2 a
core (wall clock, loaded by another process: LeNet-5 128 against 64 images +4%, mnist-cnn 64
against 32 +13%, mnist-resnet 32 against 16 +1%, mnist-mobilenet 32 against 16 +10%,
mnist-inception 64 against 32 +7%; benchmarks/bench_evaluate.py --batches prints the img/s by batch)."""
INFERENCE_BATCHES = tuple(2**k for k in range(10))
"""The batch sizes `inference_batch` chooses from: 1 to 512."""


def inference_batch(report: Report) -> int:
    """The largest of `INFERENCE_BATCHES` whose inference forward holds at most
    `INFERENCE_WORK_BYTES` in its largest layer (1 when none does).

    >>> from convcli.networks.words import parse_words
    >>> from convcli.networks.report import analyse
    >>> inference_batch(analyse(parse_words("28x28x1 conv:32,f=3,p=same relu flatten fc:10".split())))
    64
    """
    fits = [n for n in INFERENCE_BATCHES if estimate(report, n).transient_eval <= INFERENCE_WORK_BYTES]
    return max(fits, default=1)


class _Buffer:
    """One array a forward makes, and whether a cache already holds it."""

    __slots__ = ("nbytes", "held")

    def __init__(self, nbytes: int) -> None:
        self.nbytes, self.held = nbytes, False

    def hold(self) -> int:
        """Hold it; the bytes this adds (0 if it was already held)."""
        new = 0 if self.held else self.nbytes
        self.held = True
        return new


def _sequence(infos, x: _Buffer, n, train, copies, fuse, rows, index, path, depth) -> tuple[_Buffer, int, int]:
    """Walk a `convcli.nn.model.Sequential`: (its output buffer, bytes kept, largest transient)."""
    kept = transient = 0
    numbers = {id(info): k for k, info in enumerate(infos, 1)}
    order = run_order(infos, fuse)
    fused = fused_positions(order, fuse)
    for i, info in enumerate(order):
        row_index = f"{index}{numbers[id(info)]}"
        role = "fused" if i in fused else "applies" if i + 1 in fused else ""
        x, k, t = _layer(info, x, n, train, copies, fuse, rows, row_index, f"{path}{i}", depth, role)
        kept, transient = kept + k, max(transient, t)
    return x, kept, transient


def _layer(
    info: LayerInfo, x: _Buffer, n, train, copies, fuse, rows, index, path, depth, role: str = ""
) -> tuple[_Buffer, int, int]:
    """One row; ``role``: "applies" for a batch norm applying the next activation, "fused" for
    that activation (`fuses_activation`)."""
    layer = info.layer
    # an elementwise layer is as large as what reaches it: a ReLU run after the max pooling it
    # precedes in the spec (`runs_pool_first`) sees the pooled maps, not the report's shape
    elementwise = isinstance(layer, (S.Activation, S.BatchNorm, S.Dropout))
    out_bytes = x.nbytes if elementwise else n * prod(info.out_shape) * ITEMSIZE
    at = len(rows)
    if isinstance(layer, S.CONTAINERS):
        y, cached, kept, transient = _block(info, x, n, train, copies, fuse, rows, index, path, depth)
        exact = not isinstance(layer, S.Scale) and all(r.exact for r in rows[at:])
    elif not train:  # nothing kept: the input is alive while the layer makes its output
        fp, view, _, exact = _footprint(info, n, train, x.nbytes, out_bytes, role)
        y, cached, kept, transient = (x if view else _Buffer(out_bytes)), 0, 0, x.nbytes + fp.forward
    else:
        fp, view, keeps_output, exact = _footprint(info, n, train, x.nbytes, out_bytes, role)
        y = x if view else _Buffer(out_bytes)
        kept = fp.own + (x.hold() if fp.keeps_input else 0) + (y.hold() if keeps_output else 0)
        cached = fp.own + (x.nbytes if fp.keeps_input else 0) + (out_bytes if keeps_output else 0)
        transient = max(fp.forward, fp.backward)
    params = info.params * ITEMSIZE
    row = LayerMemory(index, path, info.word, depth, params, copies * params, out_bytes, cached, kept, transient, exact)
    rows.insert(at, row)
    return y, kept, transient


def _block(info, x: _Buffer, n, train, copies, fuse, rows, index, path, depth) -> tuple[_Buffer, int, int, int]:
    """A residual block or a concatenation: (output, own cache, kept with the children's, transient)."""
    layer, (x_bytes, out_bytes) = info.layer, (x.nbytes, n * prod(info.out_shape) * ITEMSIZE)
    kept, transients = 0, [0]
    for name, branch in info.children:
        tag = name[0] if name.startswith(("body", "shortcut")) else name.split()[-1]
        child = name.replace(" ", "") if isinstance(layer, S.Concat) else name
        _, k, t = _sequence(branch, x, n, train, copies, fuse, rows, f"{index}.{tag}", f"{path}.{child}.", depth + 1)
        kept, transients = kept + k, transients + [t]
    inner = max(transients)
    if not train:  # the block's input lives while its branches run; then their outputs and the sum
        return _Buffer(out_bytes), 0, 0, max(inner + x_bytes, x_bytes + 3 * out_bytes)
    if isinstance(layer, S.Scale):  # not trained by convcli: kept as frameworks keep x for x * body(x)
        held = x.hold()
        return _Buffer(out_bytes), x_bytes, kept + held, max(inner, x_bytes + out_bytes)
    if isinstance(layer, S.Concat):
        offsets = 8 * len(info.children)  # np.cumsum of the widths (int64), sliced: a view of all of it
        # the branches' outputs and their concatenation; the backward sums the branches' dx
        return _Buffer(out_bytes), offsets, kept + offsets, max(inner + x_bytes, 2 * out_bytes)
    y = _Buffer(out_bytes)  # body + shortcut
    cached = 0
    if layer.act:  # its Activation keeps its own output (and swish the sum too)
        cached = out_bytes
        if layer.act == "swish":
            y.hold()
            cached = 2 * out_bytes
        y = _Buffer(out_bytes)
        y.hold()
    if not any(name == "shortcut" for name, _ in info.children):  # no skip (dwsep): the body alone
        return y, cached, kept + cached, max(inner, 3 * out_bytes if layer.act else 0)
    # the backward holds the gradient at the output, then the body's dx while the shortcut runs
    return y, cached, kept + cached, max(inner + x_bytes + out_bytes, 3 * out_bytes)


def _footprint(
    info: LayerInfo, n: int, train: bool, x: int, y: int, role: str = ""
) -> tuple[Footprint, bool, bool, bool]:
    """``(footprint, output is a view of the input, keeps its output, exact)`` of one layer."""
    layer, b = info.layer, ITEMSIZE
    shape = info.in_shape
    if isinstance(layer, (S.Conv, S.DWConv)) and getattr(layer, "table", None) is None:
        (h, w, c_in), (oh, ow, c_out) = shape, info.out_shape
        ah, aw = conv_axis(h, layer.f, layer.s, layer.p, layer.d), conv_axis(w, layer.f, layer.s, layer.p, layer.d)
        groups = c_in if isinstance(layer, S.DWConv) else layer.g
        pads = (ah.p_lo, ah.p_hi, aw.p_lo, aw.p_hi)
        split = len(slices_for(n, conv_work(n, c_out, (oh, ow), c_in // groups * layer.f**2))) > 1  # as conv2d
        fp = conv_footprint(n, c_in, c_out, (h, w), (oh, ow), layer.f, layer.s, pads, groups, b, split)
        return fp, False, False, True
    if isinstance(layer, S.Pool):
        return (
            _pool(info, n, layer.f, layer.stride, layer.p, layer.ceil, layer.kind, layer.count_pad),
            False,
            False,
            True,
        )
    if isinstance(layer, S.AdaptivePool) and shape[0] == shape[1] and shape[0] % layer.size == 0:
        f = shape[0] // layer.size
        return _pool(info, n, f, f, 0, False, layer.kind, True), False, False, True
    if isinstance(layer, S.GlobalPool):
        (h, w, c) = shape
        return global_pool_footprint(n, c, (h, w), layer.kind, b), False, False, True
    if isinstance(layer, S.BatchNorm):
        # x - mean (like x) and 1/std per channel, and the output when it applies its activation;
        # the forward makes x - mean and the output, the backward holds dy and dx (the masked
        # gradient, scaled in place, when it applies its activation, with the mask), its work done
        # in the place of the spent x - mean (evaluation makes the output in the place of x - mean,
        # keeping neither)
        applies = role == "applies"
        forward = 2 * x if train else x
        return Footprint(x + shape[-1] * b, False, forward, 2 * x + (x // b if applies else 0)), False, applies, True
    if isinstance(layer, S.Activation) and role == "fused":  # the identity: its batch norm applied it
        return Footprint(0, False, 0, 0), True, False, True
    if isinstance(layer, S.Activation) and layer.name != "softmax":
        cheap = layer.name in CHEAP_ACTIVATIONS
        # keeps its output, and swish its input too; relu's backward mask is one byte a number
        backward = y + x + (x // b if layer.name in ("relu", "relu6") else 2 * x)
        return Footprint(0, layer.name == "swish", y if cheap else y + 3 * x, backward), False, True, True
    if isinstance(layer, S.Dropout):
        if not train or layer.rate == 0:
            return Footprint(0, False, 0, 2 * x), True, False, True
        # the mask as float32, from a boolean draw; the output is x times the mask
        return Footprint(x, False, x // b + 2 * x + y, 2 * x), False, False, True
    if isinstance(layer, S.Flatten):
        return Footprint(0, False, 0, x), True, False, True
    if isinstance(layer, S.FC):
        # keeps its input flattened (a view); the backward's dw is the gradient, not work
        return Footprint(0, True, y, y + x), False, False, True
    # not a layer convcli trains: counted as keeping its input, as frameworks do
    return Footprint(0, True, y, x + y), False, False, False


def _pool(info: LayerInfo, n: int, f: int, s: int, p, ceil: bool, mode: str, count_pad: bool) -> Footprint:
    (h, w, c), (oh, ow, _) = info.in_shape, info.out_shape
    axes = []
    for size in (h, w):
        a = pool_axis(size, f, s, p, 1, ceil)
        axes.append((a, max((a.out - 1) * s + f - (size + a.p_lo + a.p_hi), 0)))
    (ah, below), (aw, beyond) = axes
    pads = (ah.p_lo, ah.p_hi, aw.p_lo, aw.p_hi)
    return pool_footprint(n, c, (h, w), (oh, ow), f, s, pads, (below, beyond), mode, count_pad, ITEMSIZE)


def _largest_param(info: LayerInfo) -> int:
    """Numbers in the largest single parameter array of ``info`` (its weights, at most)."""
    if info.children:
        return max((_largest_param(c) for _, branch in info.children for c in branch), default=0)
    return info.params
