"""What each block word of `convcli.networks.spec` stands for: the general container
(:class:`~convcli.networks.spec.Residual` or :class:`~convcli.networks.spec.Concat`) of
primitive layers that the report, the trainer and the spec files see.

The layouts follow the papers the blocks come from: ResNet's basic and bottleneck blocks (He et
al. 2015; ``v=1.5`` puts the stride on the 3x3, as torchvision does), GoogLeNet's Inception
module (Szegedy et al. 2014), MobileNetV2's inverted residual (Sandler et al. 2018) and
MobileNet's depthwise-separable unit (Howard et al. 2017).
"""

from __future__ import annotations

from convcli.networks.spec import (
    Activation,
    BasicBlock,
    BatchNorm,
    Bottleneck,
    Concat,
    Conv,
    DWConv,
    DWSeparable,
    Inception,
    InvertedResidual,
    Layer,
    Pool,
    Residual,
)


def expand(block: Layer, c_in: int) -> Layer:
    """The general container (:class:`Residual` or :class:`Concat`) a block word stands for,
    given its input channel count ``c_in``. Other layers are returned unchanged."""
    if isinstance(block, BasicBlock):
        c, s = block.channels, block.s
        body: tuple[Layer, ...] = (
            Conv(c, 3, s, 1, bias=False),
            BatchNorm(),
            Activation("relu"),
            Conv(c, 3, 1, 1, bias=False),
            BatchNorm(),
        )
        return Residual(body, _projection(c_in, c, s), "relu")
    if isinstance(block, Bottleneck):
        c, s, out = block.channels, block.s, block.channels * block.e
        s1, s3 = (1, s) if block.v >= 1.5 else (s, 1)
        body = (
            Conv(c, 1, s1, 0, bias=False),
            BatchNorm(),
            Activation("relu"),
            Conv(c, 3, s3, 1, bias=False),
            BatchNorm(),
            Activation("relu"),
            Conv(out, 1, 1, 0, bias=False),
            BatchNorm(),
        )
        return Residual(body, _projection(c_in, out, s), "relu")
    if isinstance(block, Inception):
        b = block

        def unit(c: int, f: int) -> tuple:
            if b.bn:
                return (Conv(c, f, 1, "same", bias=False), BatchNorm(), Activation("relu"))
            return (Conv(c, f, 1, "same"), Activation("relu"))

        mid3 = unit(b.r3, 1) if b.reduce else ()
        mid5 = unit(b.r5, 1) if b.reduce else ()
        pool = (Pool("max", 3, 1, 1, ceil=True),) + unit(b.pp, 1)
        return Concat((unit(b.c1, 1), mid3 + unit(b.c3, 3), mid5 + unit(b.c5, b.f5), pool))
    if isinstance(block, InvertedResidual):
        hidden = c_in * block.t
        expand_ = (Conv(hidden, 1, 1, 0, bias=False), BatchNorm(), Activation("relu6")) if block.t != 1 else ()
        body = expand_ + (
            DWConv(3, block.s, 1, bias=False),
            BatchNorm(),
            Activation("relu6"),
            Conv(block.channels, 1, 1, 0, bias=False),
            BatchNorm(),
        )
        if block.s == 1 and c_in == block.channels:
            return Residual(body, (), None)
        return Residual(body, None, None)
    if isinstance(block, DWSeparable):
        p = "same" if block.s == 1 else "tf"
        return Residual(
            (
                DWConv(3, block.s, p, bias=False),
                BatchNorm(),
                Activation("relu6"),
                Conv(block.channels, 1, 1, 0, bias=False),
                BatchNorm(),
                Activation("relu6"),
            ),
            None,
            None,
        )
    return block


def _projection(c_in: int, c_out: int, s: int) -> tuple:
    if s == 1 and c_in == c_out:
        return ()
    return (Conv(c_out, 1, s, 0, bias=False), BatchNorm())
