"""The comparisons the field teaches: one convolution built three ways, and an Inception module with
and without its 1x1 reductions. Every variant is a network spec analysed like any other, priced
against the first."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from convcli.errors import SpecError
from convcli.networks import spec as S
from convcli.networks.costs import separable_ratio
from convcli.networks.report import Report, analyse
from convcli.networks.words import format_layer, parse_layer, parse_shape


class Variant(NamedTuple):
    """One design: its report, and its MACs (``ratio``) and parameters over the first design's."""

    name: str
    report: Report
    ratio: float
    params_ratio: float


class ClosedForm(NamedTuple):
    """MobileNet's cost of a depthwise-separable over a standard convolution, ``1/C_out + 1/f^2``
    (``ratio``), beside the ratio of the MACs counted (``measured``)."""

    c_out: int
    f: int
    ratio: float
    measured: float


class Comparison(NamedTuple):
    """Variants of one design, the first the reference; ``bottleneck`` is the channel count of the
    1x1 bottleneck variant of a convolution."""

    variants: tuple[Variant, ...]
    closed_form: ClosedForm | None = None
    bottleneck: int | None = None


def _priced(networks: dict[str, S.Network]) -> tuple[Variant, ...]:
    reports = {name: analyse(network) for name, network in networks.items()}
    base = next(iter(reports.values()))
    return tuple(
        Variant(
            name,
            report,
            ratio=report.total("macs") / base.total("macs"),
            params_ratio=report.total("params") / base.total("params"),
        )
        for name, report in reports.items()
    )


def _network(shape: tuple[int, int, int], name: str, *layers: S.Layer, words: tuple[str, ...] = ()) -> S.Network:
    words = words or tuple(map(format_layer, layers))
    return S.Network(shape, tuple(S.Step(layer, word) for layer, word in zip(layers, words)), name)


def compare_conv(input_shape: str, word: str, bottleneck: int | None = None) -> Comparison:
    """A convolution as standard, depthwise-separable (depthwise f x f, then pointwise 1x1) and as a
    1x1 bottleneck to ``bottleneck`` channels (default: a quarter of the input's) followed by the
    convolution. Variants: ``standard``, ``depthwise_separable``, ``bottleneck``.

    >>> c = compare_conv("28x28x192", "conv:32,f=5,p=same", 16)
    >>> [round(v.ratio, 4) for v in c.variants], round(c.closed_form.ratio, 4)
    ([1.0, 0.0712, 0.1033], 0.0713)
    """
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
    variants = _priced(
        {
            "standard": _network(shape, "standard", conv, words=(word,)),
            "depthwise_separable": _network(shape, "depthwise_separable", depthwise, pointwise),
            "bottleneck": _network(shape, "bottleneck", reduce, conv, words=(format_layer(reduce), word)),
        }
    )
    closed = ClosedForm(conv.channels, conv.f, separable_ratio(conv.channels, conv.f), variants[1].ratio)
    return Comparison(variants, closed, k)


def compare_inception(input_shape: str, word: str) -> Comparison:
    """An Inception module without its 1x1 reductions (the naive module) and with them.
    Variants: ``without_reductions``, ``with_reductions``."""
    shape = parse_shape(input_shape)
    module = parse_layer(word)
    if not isinstance(module, S.Inception):
        raise SpecError(f"expected an inception word such as inception:64,96-128,16-32,32 (got '{word}')")
    naive = replace(module, reduce=False)
    return Comparison(
        _priced(
            {
                "without_reductions": _network(shape, "without", naive),
                "with_reductions": _network(shape, "with", module, words=(word,)),
            }
        )
    )


def compare(input_shape: str, word: str, bottleneck: int | None = None) -> Comparison:
    """:func:`compare_conv` or :func:`compare_inception`, by the kind of ``word``."""
    if isinstance(parse_layer(word), S.Inception):
        if bottleneck is not None:
            raise SpecError("--bottleneck applies to a convolution, not to an inception module")
        return compare_inception(input_shape, word)
    return compare_conv(input_shape, word, bottleneck)
