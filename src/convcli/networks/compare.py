"""The comparisons the field teaches: one convolution built three ways, and an Inception module with
and without its 1x1 reductions. Every variant is a network spec analysed like any other."""

from __future__ import annotations

from dataclasses import replace

from convcli.errors import SpecError
from convcli.networks import spec as S
from convcli.networks.report import Report, analyse
from convcli.networks.words import parse_layer, parse_shape


def compare_conv(input_shape: str, word: str, bottleneck: int | None = None) -> dict[str, Report]:
    """A convolution as standard, depthwise-separable (depthwise f x f, then pointwise 1x1) and as a
    1x1 bottleneck to ``bottleneck`` channels (default: a quarter of the input's) followed by the
    convolution. Keys: ``standard``, ``depthwise_separable``, ``bottleneck``."""
    shape = parse_shape(input_shape)
    conv = parse_layer(word)
    if not isinstance(conv, S.Conv) or conv.g != 1 or conv.table is not None:
        raise SpecError(f"compare takes one ungrouped convolution such as conv:128,f=3 (got '{word}')")
    k = bottleneck if bottleneck is not None else max(1, shape[2] // 4)
    if k < 1:
        raise SpecError(f"--bottleneck {k} must be a positive channel count")
    depthwise = S.DWConv(conv.f, conv.s, conv.p, conv.d, 1, conv.bias)
    pointwise = S.Conv(conv.channels, 1, 1, 0, bias=conv.bias)
    reduce = S.Conv(k, 1, 1, 0, bias=conv.bias)
    variants = {
        "standard": [(conv, word)],
        "depthwise_separable": [(depthwise, _word("dwconv", depthwise)), (pointwise, _word("conv", pointwise))],
        "bottleneck": [(reduce, _word("conv", reduce)), (conv, word)],
    }
    return {
        name: analyse(S.Network(shape, tuple(S.Step(layer, w) for layer, w in steps), name))
        for name, steps in variants.items()
    }


def compare_inception(input_shape: str, word: str) -> dict[str, Report]:
    """An Inception module without its 1x1 reductions (the naive module) and with them.
    Keys: ``without_reductions``, ``with_reductions``."""
    shape = parse_shape(input_shape)
    module = parse_layer(word)
    if not isinstance(module, S.Inception):
        raise SpecError(f"expected an inception word such as inception:64,96-128,16-32,32 (got '{word}')")
    naive = replace(module, reduce=False)
    return {
        "without_reductions": analyse(S.Network(shape, (S.Step(naive, word + ",reduce=0"),), "without")),
        "with_reductions": analyse(S.Network(shape, (S.Step(module, word),), "with")),
    }


def _word(kind: str, layer: S.Conv | S.DWConv) -> str:
    parts = [f"{layer.channels}"] if isinstance(layer, S.Conv) else []
    parts += [f"f={layer.f}"]
    if layer.s != 1:
        parts.append(f"s={layer.s}")
    if layer.p not in (0, "valid"):
        parts.append(f"p={layer.p}")
    if layer.d != 1:
        parts.append(f"d={layer.d}")
    if not layer.bias:
        parts.append("bias=0")
    return f"{kind}:{','.join(parts)}"


def compare(input_shape: str, word: str, bottleneck: int | None = None) -> dict[str, Report]:
    """:func:`compare_conv` or :func:`compare_inception`, by the kind of ``word``."""
    if isinstance(parse_layer(word), S.Inception):
        if bottleneck is not None:
            raise SpecError("--bottleneck applies to a convolution, not to an inception module")
        return compare_inception(input_shape, word)
    return compare_conv(input_shape, word, bottleneck)
