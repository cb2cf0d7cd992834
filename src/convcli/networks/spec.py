"""The network spec: one description of a network, shared by shape-calc, params, flops and train.

A network is an input shape and a sequence of layers. Each layer is a frozen dataclass named after
the shell word that writes it (``conv:16,f=3,s=2`` is ``Conv(channels=16, f=3, s=2)``). Blocks that
real architectures need (ResNet's residual blocks, Inception modules, MobileNet's inverted residual)
are words too; they expand into the two general containers, :class:`Residual` and :class:`Concat`,
once the input channel count is known (see `convcli.networks.blocks.expand`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

Padding = int | str

ACTIVATIONS = (
    "relu",
    "relu6",
    "leakyrelu",
    "tanh",
    "sigmoid",
    "softmax",
    "gelu",
    "swish",
    "scaledtanh",
    "hardsigmoid",
    "hardswish",
)


@dataclass(frozen=True)
class Conv:
    """Convolution to ``channels`` maps. ``p`` is an int or valid/same/full/tf.

    ``table`` names a sparse connection table (LeNet-5's C3 connects each output map to a few
    input maps only); ``None`` is the usual full connection.
    """

    channels: int
    f: int = 3
    s: int = 1
    p: Padding = 0
    d: int = 1
    g: int = 1
    bias: bool = True
    table: str | None = None


@dataclass(frozen=True)
class DWConv:
    """Depthwise convolution: groups = input channels, ``m`` output maps per input map."""

    f: int = 3
    s: int = 1
    p: Padding = "same"
    d: int = 1
    m: int = 1
    bias: bool = True


@dataclass(frozen=True)
class ConvT:
    """Transposed convolution with ``op`` output padding (PyTorch's ConvTranspose2d)."""

    channels: int
    f: int = 2
    s: int = 2
    p: int = 0
    op: int = 0
    d: int = 1
    g: int = 1
    bias: bool = True


@dataclass(frozen=True)
class Pool:
    """Max or average pooling; the stride defaults to the window size ``f``.

    ``count_pad`` (average pooling): padded zeros count in the mean, as PyTorch's default.
    """

    kind: str = "max"
    f: int = 2
    s: int | None = None
    p: Padding = 0
    ceil: bool = False
    count_pad: bool = True

    @property
    def stride(self) -> int:
        return self.f if self.s is None else self.s


@dataclass(frozen=True)
class GlobalPool:
    """Global average (``gap``) or max (``gmp``) pooling to 1 x 1 x C."""

    kind: str = "avg"


@dataclass(frozen=True)
class AdaptivePool:
    """Adaptive average pooling to ``size`` x ``size`` (torchvision's AlexNet and VGG heads)."""

    size: int
    kind: str = "avg"


@dataclass(frozen=True)
class Subsample:
    """LeNet-5 (1998) subsampling: average of an f x f window times a trainable coefficient plus
    a trainable bias, one pair per map."""

    f: int = 2


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation: gamma and beta trained, running mean and variance kept as statistics."""

    eps: float = 1e-5


@dataclass(frozen=True)
class Activation:
    name: str = "relu"


@dataclass(frozen=True)
class PReLU:
    """Parametric ReLU (He et al. 2015): a learnt negative slope for each channel, or one for all
    (``shared``)."""

    shared: bool = False


@dataclass(frozen=True)
class ChannelSlice:
    """Channels ``start`` up to (not including) ``stop`` of the input: one half of a ShuffleNet V2
    split, as a branch of a :class:`Concat` takes it."""

    start: int
    stop: int


@dataclass(frozen=True)
class Shuffle:
    """ShuffleNet's channel shuffle over ``g`` groups: a fixed permutation of the channels."""

    g: int


@dataclass(frozen=True)
class Unknown:
    """An operator convcli does not know (read from a model file): it gives a map of ``shape``
    (``HxWxC``, or ``N`` flat values; empty: the shape of its input) and is counted as nothing,
    which every report says by name."""

    op: str
    shape: str = ""


@dataclass(frozen=True)
class Dropout:
    rate: float = 0.5


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class FC:
    """Fully connected layer to ``units`` outputs."""

    units: int
    bias: bool = True


@dataclass(frozen=True)
class RBF:
    """LeNet-5 (1998) output layer: Euclidean radial basis units whose centres are fixed by hand
    (not trained), one per class."""

    units: int


@dataclass(frozen=True)
class Residual:
    """``act(body(x) + shortcut(x))``: an empty shortcut is the identity, ``None`` means no skip
    connection at all (the block is then a plain sequence, e.g. a strided MobileNet V2 block)."""

    body: tuple = ()
    shortcut: tuple | None = ()
    act: str | None = "relu"


@dataclass(frozen=True)
class Concat:
    """Parallel branches, concatenated along channels (an Inception module)."""

    branches: tuple = ()


@dataclass(frozen=True)
class Scale:
    """``x * body(x)``: the channels scaled by what ``body`` makes of them, a squeeze-and-excitation
    block (Hu et al. 2018) when the body is ``gap``, two 1x1 convolutions and a sigmoid."""

    body: tuple = ()


CONTAINERS = (Residual, Concat, Scale)


@dataclass(frozen=True)
class BasicBlock:
    """ResNet-18/34 block: two 3x3 convolutions; a 1x1 projection when the shape changes."""

    channels: int
    s: int = 1


@dataclass(frozen=True)
class Bottleneck:
    """ResNet-50 block: 1x1, 3x3, 1x1 to ``channels * e``. ``v=1.5`` (torchvision) strides in the
    3x3, ``v=1`` (the original paper) in the first 1x1."""

    channels: int
    s: int = 1
    e: int = 4
    v: float = 1.5


@dataclass(frozen=True)
class Inception:
    """GoogLeNet module: 1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max-pool -> 1x1.

    Written ``inception:c1,r3-c3,r5-c5,pp``. ``f5`` is the kernel of the "5x5" branch (torchvision
    uses 3), ``bn`` puts batch norm after each convolution (torchvision), ``reduce=0`` drops the
    1x1 reductions in front of the 3x3 and 5x5 (the naive module).
    """

    c1: int
    r3: int
    c3: int
    r5: int
    c5: int
    pp: int
    f5: int = 5
    bn: bool = False
    reduce: bool = True


@dataclass(frozen=True)
class InvertedResidual:
    """MobileNet V2 block: 1x1 expand by ``t``, 3x3 depthwise with stride ``s``, 1x1 linear
    projection; a residual connection when the stride is 1 and the channels match."""

    channels: int
    t: int = 6
    s: int = 1


@dataclass(frozen=True)
class DWSeparable:
    """MobileNet V1 block: 3x3 depthwise (stride ``s``, TensorFlow SAME), BN, ReLU6, 1x1 to
    ``channels``, BN, ReLU6."""

    channels: int
    s: int = 1


Layer = (
    Conv
    | DWConv
    | ConvT
    | Pool
    | GlobalPool
    | AdaptivePool
    | Subsample
    | BatchNorm
    | Activation
    | PReLU
    | ChannelSlice
    | Shuffle
    | Unknown
    | Dropout
    | Flatten
    | FC
    | RBF
    | Residual
    | Concat
    | Scale
    | BasicBlock
    | Bottleneck
    | Inception
    | InvertedResidual
    | DWSeparable
)

BLOCKS = (BasicBlock, Bottleneck, Inception, InvertedResidual, DWSeparable)


@dataclass(frozen=True)
class Step:
    """One layer of a network together with the word (or spec-file text) that wrote it."""

    layer: Layer
    word: str


@dataclass(frozen=True)
class Network:
    """An input shape ``(H, W, C)`` and the layers applied to it, in order. ``notes`` are what
    the reader of a model file found worth saying (batch norm folded, a batch of several images)."""

    input: tuple[int, int, int]
    steps: tuple[Step, ...]
    name: str = ""
    source: str = field(default="", compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def layers(self) -> tuple[Layer, ...]:
        return tuple(step.layer for step in self.steps)


def same_network(a: Network, b: Network) -> bool:
    """Same input and layers (names and words may differ)."""
    return a.input == b.input and a.layers == b.layers


# LeNet-5's C3 connection table (LeCun et al. 1998, Table I): the input maps S2 feeds into each of
# the 16 output maps. 60 connections in all, so C3 has 60 * 25 + 16 = 1,516 parameters.
LENET5_C3 = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def tf_convention(network: Network) -> Network:
    """The same network with every ``p=same`` read as TensorFlow's SAME (``p=tf``), which also
    allows strides above 1."""

    def convert(layer):
        if isinstance(layer, Residual):
            return Residual(
                tuple(map(convert, layer.body)),
                None if layer.shortcut is None else tuple(map(convert, layer.shortcut)),
                layer.act,
            )
        if isinstance(layer, Concat):
            return Concat(tuple(tuple(map(convert, b)) for b in layer.branches))
        if isinstance(layer, Scale):
            return Scale(tuple(map(convert, layer.body)))
        if getattr(layer, "p", None) == "same":
            return replace(layer, p="tf")
        return layer

    steps = tuple(Step(convert(step.layer), step.word) for step in network.steps)
    return replace(network, steps=steps)


def unknown_operators(layers: tuple) -> dict[str, int]:
    """How often each :class:`Unknown` operator occurs in ``layers``, containers searched too.

    >>> unknown_operators((Unknown("Resize"), Residual((Unknown("Resize"), Unknown("Einsum")))))
    {'Einsum': 1, 'Resize': 2}
    """
    found: dict[str, int] = {}

    def visit(items: tuple) -> None:
        for layer in items:
            if isinstance(layer, Unknown):
                found[layer.op] = found.get(layer.op, 0) + 1
            for inner in inner_sequences(layer):
                visit(inner)

    visit(layers)
    return dict(sorted(found.items()))


def inner_sequences(layer: Layer) -> tuple[tuple, ...]:
    """The layer sequences a container holds: a :class:`Residual`'s body and shortcut (none
    counted as empty), a :class:`Concat`'s branches, a :class:`Scale`'s body; none for any
    other layer.

    >>> inner_sequences(Residual((BatchNorm(),), None, None))
    ((BatchNorm(eps=1e-05),), ())
    """
    if isinstance(layer, Residual):
        return (layer.body, layer.shortcut or ())
    if isinstance(layer, Concat):
        return layer.branches
    if isinstance(layer, Scale):
        return (layer.body,)
    return ()
