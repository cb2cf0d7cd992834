"""The network an export writes: the layers of a model with their padding resolved to explicit
sides and their weights in hand, and how the images are prepared before the first layer.

A writer (`convcli.interop.onnx_out`, `convcli.interop.torch_out`) translates these nodes one by
one and derives nothing: shapes come from the report (`convcli.networks.report.analyse`),
padding from the window geometry that convolution and pooling themselves run on
(`convcli.ops.windows`), weights from the built model. Every node is named by its convcli
parameter path (``"3.body.0."``), the key its arrays have in a checkpoint.

Layouts are those of convcli's numpy layers, which are also ONNX's and PyTorch's: NCHW feature
maps, convolution weights (C_out, C_in / groups, f, f), fully connected weights (units, n_in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.errors import SpecError
from convcli.networks import spec as S
from convcli.networks.report import LayerInfo, Report, walk
from convcli.nn import layers as L
from convcli.nn import model as M
from convcli.nn.model import Model, Sequential, trainable_layers
from convcli.ops.windows import conv_windows, pool_windows

# What an export can write is what convcli can hold weights for: the layers `build_model` builds.
ACTIVATIONS = tuple(L.ACTIVATIONS)
LEAKY_SLOPE = L.LEAKY_SLOPE
EXPORTABLE = (
    "conv, dwconv, maxpool, avgpool, gap, gmp, adaptivepool (equal windows), bn, dropout, flatten, fc, "
    f"{', '.join(ACTIVATIONS)}, the blocks built from them, and softmax as the last layer"
)

Shape = tuple


@dataclass(frozen=True, eq=False)
class Node:
    """One layer: its convcli path and word, input and output shape ``(H, W, C)`` or ``(F,)``."""

    path: str
    word: str
    in_shape: Shape
    out_shape: Shape


@dataclass(frozen=True, eq=False)
class Conv(Node):
    """Convolution; ``pads`` are (top, bottom, left, right). Depthwise: ``groups`` = C_in."""

    w: np.ndarray  # C_out, C_in / groups, f, f
    b: np.ndarray | None
    stride: int
    pads: tuple[int, int, int, int]
    dilation: int
    groups: int


@dataclass(frozen=True, eq=False)
class BatchNorm(Node):
    """Batch normalisation in evaluation mode: the running statistics normalise."""

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float


@dataclass(frozen=True, eq=False)
class Pool(Node):
    """Max or average pooling over f x f windows.

    ``pads`` (top, bottom, left, right) are the padding asked for; ``overhang`` (rows, columns)
    the further zeros past the bottom and right that ceil mode's last windows reach, which an
    average never counts. ``count_pad``: the padding's zeros count in an average.
    """

    kind: str
    f: int
    stride: int
    pads: tuple[int, int, int, int]
    overhang: tuple[int, int]
    ceil: bool
    count_pad: bool


@dataclass(frozen=True, eq=False)
class GlobalPool(Node):
    kind: str


@dataclass(frozen=True, eq=False)
class Activation(Node):
    name: str


@dataclass(frozen=True, eq=False)
class Dropout(Node):
    """Identity in evaluation; the rate is kept for a framework that can train."""

    rate: float


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """(N, C, H, W) to (N, C*H*W), channel-major."""


@dataclass(frozen=True, eq=False)
class Linear(Node):
    """``y = x @ w.T + b``; an input of 1 x 1 x C maps is flattened first (``in_shape`` says)."""

    w: np.ndarray  # units, n_in
    b: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Residual(Node):
    """``act(body(x) + shortcut(x))``: an empty shortcut is the identity, None no skip at all."""

    body: tuple[Node, ...]
    shortcut: tuple[Node, ...] | None
    act: str | None


@dataclass(frozen=True, eq=False)
class Concat(Node):
    """Branches on the same input, concatenated along channels; ``(name, nodes)`` each."""

    branches: tuple[tuple[str, tuple[Node, ...]], ...]


@dataclass(frozen=True, eq=False)
class Exported:
    """A network ready to write.

    The export takes images ``image`` (C, H, W) with values as the training data had them;
    before the first layer they are zero-padded by ``pad`` on every side (28x28 digits into
    LeNet-5's 32x32) and normalised ``(x - mean) / std`` (None for a network never trained).
    A final softmax is left out (``softmax_dropped``): the output is the logits. ``source`` is
    the checkpoint or spec exported; ``seed`` drew the weights of a spec (None: trained weights).
    """

    network: S.Network
    words: str
    layers: tuple[Node, ...]
    image: tuple[int, int, int]
    pad: int
    mean: float | None
    std: float | None
    class_names: tuple[str, ...]
    n_params: int
    softmax_dropped: bool
    source: str
    seed: int | None

    @property
    def preparation(self) -> str:
        """How the input is prepared inside the exported model, in words.

        >>> net = Exported(S.Network((32, 32, 1), ()), "", (), (1, 28, 28), 2, 0.1, 0.3, (), 0, False, "m.npz", None)
        >>> net.preparation
        'zero-padded by 2 pixels to 32x32, then normalised as (x - 0.1) / 0.3'
        """
        steps = []
        if self.pad:
            h, w = self.network.input[:2]
            steps.append(f"zero-padded by {self.pad} pixels to {h}x{w}")
        if self.normalised:
            steps.append(f"normalised as (x - {self.mean:.6g}) / {self.std:.6g}")
        return ", then ".join(steps) or "taken as it is (no normalisation: the weights were never trained)"

    @property
    def weights(self) -> str:
        """Where the weights come from, in words."""
        if self.seed is None:
            return f"trained, from {self.source}"
        return f"random (seed {self.seed}, as 'convcli train' starts): {self.source} is a spec, not a checkpoint"

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].out_shape[-1]

    @property
    def normalised(self) -> bool:
        return self.mean is not None


def ends_in_softmax(report: Report) -> bool:
    last = report.layers[-1].layer if report.layers else None
    return isinstance(last, S.Activation) and last.name == "softmax"


def check_exportable(report: Report, max_bytes: int | None = None) -> None:
    """Refuse, naming it, the first layer an export cannot write, and a network whose float32
    weights and statistics take more than ``max_bytes``; before any weights exist."""
    size = 4 * (report.total("params") + report.total("buffers"))
    if max_bytes is not None and size > max_bytes:
        raise SpecError(
            f"the network's weights take {size / 2**30:.2f} GiB, more than the {max_bytes / 2**30:.2f} GiB "
            "one ONNX file holds (convcli does not write ONNX's external data files)"
        )
    infos = report.layers[:-1] if ends_in_softmax(report) else report.layers
    for info in walk(infos):
        reason = _unexportable(info)
        if reason is not None:
            raise SpecError(
                f"layer '{info.word}' ({reason}) cannot be exported: convcli holds weights only for "
                f"the layers it trains, and export writes those: {EXPORTABLE}"
            )


def _unexportable(info: LayerInfo) -> str | None:
    layer = info.layer
    if isinstance(layer, S.Activation):
        return None if layer.name in ACTIVATIONS else f"activation {layer.name}"
    if isinstance(layer, S.Conv) and layer.table is not None:
        return f"sparse connection table={layer.table}"
    if isinstance(layer, S.AdaptivePool):
        h, w = info.in_shape[:2]
        if h != w or h % layer.size:
            return f"input {h}x{w} does not split into equal {layer.size}x{layer.size} windows"
        return None
    if isinstance(layer, S.Residual) and layer.act not in (None, *ACTIVATIONS):
        return f"activation {layer.act}"
    exportable = (S.Conv, S.DWConv, S.Pool, S.GlobalPool, S.BatchNorm, S.Dropout, S.Flatten, S.FC)
    return None if isinstance(layer, exportable + (S.Residual, S.Concat)) else info.kind


def export_layers(report: Report, model: Model) -> tuple[Node, ...]:
    """The nodes of ``model``, built from ``report`` (which `check_exportable` has accepted)."""
    return _sequence(trainable_layers(report), model.root, "")


def _sequence(infos: tuple[LayerInfo, ...], seq: L.Layer, prefix: str) -> tuple[Node, ...]:
    # The model may run a ReLU after the max pooling it precedes (the same function, see
    # nn.memory.runs_pool_first); the swapped layers hold no weights, so position i is still the
    # path of info i, and a weighted layer is always at its own position.
    assert isinstance(seq, Sequential)
    return tuple(_node(info, seq.layers[i], f"{prefix}{i}.") for i, info in enumerate(infos))


def _node(info: LayerInfo, built: L.Layer, path: str) -> Node:
    layer, where = info.layer, (path, info.word, info.in_shape, info.out_shape)
    if isinstance(layer, S.Residual):
        assert isinstance(built, M.Residual)
        parts = dict(built.children())
        branches = dict(info.children)
        body = _sequence(branches["body"], parts["body"], f"{path}body.")
        shortcut = (
            _sequence(branches["shortcut"], parts["shortcut"], f"{path}shortcut.") if "shortcut" in parts else None
        )
        return Residual(*where, body, shortcut, layer.act)
    if isinstance(layer, S.Concat):
        assert isinstance(built, M.Concat)
        return Concat(
            *where,
            tuple(
                (name, _sequence(branch, part, f"{path}{name}."))
                for (_, branch), (name, part) in zip(info.children, built.children())
            ),
        )
    h, w = info.in_shape[:2] if len(info.in_shape) == 3 else (1, 1)
    if isinstance(layer, (S.Conv, S.DWConv)):
        assert isinstance(built, L.Conv2d)
        weight = built.params["w"]
        g = conv_windows(h, w, weight.shape[2], weight.shape[3], layer.s, layer.p, layer.d)
        return Conv(*where, weight, built.params.get("b"), layer.s, g.pads, layer.d, built.groups)
    if isinstance(layer, S.BatchNorm):
        p, b = built.params, built.buffers
        return BatchNorm(*where, p["gamma"], p["beta"], b["mean"], b["var"], layer.eps)
    if isinstance(layer, S.FC):
        return Linear(*where, built.params["w"], built.params.get("b"))
    if isinstance(layer, S.Pool):
        g = pool_windows(h, w, layer.f, layer.stride, layer.p, ceil=layer.ceil)
        return Pool(*where, layer.kind, layer.f, layer.stride, g.pads, g.overhang, layer.ceil, layer.count_pad)
    if isinstance(layer, S.AdaptivePool):  # equal windows: plain pooling with f = s = H / size
        f = h // layer.size
        return Pool(*where, layer.kind, f, f, (0, 0, 0, 0), (0, 0), False, True)
    if isinstance(layer, S.GlobalPool):
        return GlobalPool(*where, layer.kind)
    if isinstance(layer, S.Activation):
        return Activation(*where, layer.name)
    if isinstance(layer, S.Dropout):
        return Dropout(*where, layer.rate)
    return Flatten(*where)
