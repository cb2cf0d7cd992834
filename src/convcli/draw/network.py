"""The picture of a network (``convcli draw``), from its :class:`~convcli.networks.report.Report`.

Every feature map is a column: a 3-D box (height and width on a log scale, thickness from the
channel count) or, with ``style="flat"``, a rectangle with its text inside; under it its shape
``H x W x C``, the layer that made it and, in 3-D, the elementwise layers folded into it
(``bn, relu``). A residual block gets a skip arc over its body (the projection named on it), an
Inception module its branches as lanes joined at the concatenation, a depthwise convolution and
the pointwise one after it a shared background. Without ``expand`` a block is one map.

The layout is computed once (:func:`layout`) and written by every writer (:func:`draw`), so the
SVG and the PNG of a network are the same picture. Shapes, parameters and MACs are the report's:
nothing here derives a shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from convcli.draw.arrange import arrange
from convcli.draw.choices import DEFAULT_WIDTH, MIN_WIDTH, STYLES
from convcli.draw.scene import Scene
from convcli.draw.units import FOLDED, Col, Lanes, Seq, Skip, Unit, last_col
from convcli.errors import OutputError
from convcli.networks import spec as S
from convcli.networks.report import LayerInfo, Report
from convcli.networks.words import parse_layer
from convcli.outputs import PathLike

_BLOCK_KINDS = frozenset({"res", "bottleneck", "inception", "invres", "dwsep"})
_NAMES = {"gap": "global avgpool", "gmp": "global maxpool", "residual": "residual", "concat": "concat"}


def _s(s: int) -> str:
    return f", s={s}" if s != 1 else ""


def op_label(info: LayerInfo, written: S.Layer | None = None) -> str:
    """What made a map, as the course writes it: ``conv 5x5, s=1``, ``maxpool 2``, ``fc 120``.

    ``written`` is the layer as the spec wrote it: the report keeps a block (``bottleneck:64``)
    as the container it expands into, and a nested block's word is the only other record of it.

    >>> from convcli.networks.report import analyse
    >>> from convcli.networks.words import parse_words
    >>> r = analyse(parse_words("32x32x1 conv:6,f=5 maxpool:2 maxpool:3,2 flatten fc:10".split()))
    >>> [op_label(info) for info in r.layers]
    ['conv 5x5, s=1', 'maxpool 2', 'maxpool 3, s=2', 'flatten', 'fc 10']
    """
    L: Any = info.layer  # each branch below reads the fields of one dataclass
    kind = info.kind
    if kind in _BLOCK_KINDS:
        L = written if written is not None else parse_layer(info.word)
    if kind == "conv":
        return f"conv {L.f}x{L.f}, s={L.s}" + (f", d={L.d}" if L.d != 1 else "") + (f", g={L.g}" if L.g != 1 else "")
    if kind == "dwconv":
        return f"dw {L.f}x{L.f}, s={L.s}" + (f", d={L.d}" if L.d != 1 else "")
    if kind == "convT":
        return f"convT {L.f}x{L.f}, s={L.s}"
    if kind in ("maxpool", "avgpool"):
        return f"{kind} {L.f}" + (f", s={L.stride}" if L.stride != L.f else "")
    if kind in _NAMES:
        return _NAMES[kind]
    if kind in ("subsample", "adaptivepool"):
        return f"{kind} {L.f if kind == 'subsample' else L.size}"
    if kind in ("fc", "rbf"):
        return f"{kind} {L.units}"
    if kind == "res":
        return f"basic block{_s(L.s)}"
    if kind == "bottleneck":
        return f"bottleneck {L.channels}{_s(L.s)}"
    if kind == "inception":
        return f"inception {L.c1}|{L.c3}|{L.c5}|{L.pp}"
    if kind == "invres":
        return f"inv. residual t={L.t}{_s(L.s)}"
    if kind == "dwsep":
        return f"dw-separable{_s(L.s)}"
    if kind == "dropout":
        return f"dropout {L.rate:g}"
    return kind


def _chain(
    infos: Sequence[LayerInfo], expand: bool, fold: bool, units: list | None = None, written: Sequence = ()
) -> list[Unit]:
    """The units of a sequence of layers; ``units`` may already hold what comes before them, and
    ``written`` holds the layers as the spec wrote them (see :func:`op_label`)."""
    units = [] if units is None else units
    for k, info in enumerate(infos):
        if fold and info.kind in FOLDED and units:
            last_col(units[-1]).folded.append(op_label(info))
            continue
        unit = _unit(info, expand, fold, written[k] if written else None)
        before = units[-1] if units else None
        layer = info.layer
        pointwise = info.kind == "conv" and isinstance(layer, S.Conv) and layer.f == 1 and layer.g == 1
        if pointwise and isinstance(unit, Col) and isinstance(before, Col) and before.kind == "dwconv":
            unit.op = "pw 1x1"
            units[-1] = Seq(units=[before, unit], pair=True)
        else:
            units.append(unit)
    return units


def _unit(info: LayerInfo, expand: bool, fold: bool, written: S.Layer | None) -> Unit:
    col = Col(shape=info.out_shape, op=op_label(info, written), kind=info.kind)
    if not info.children:
        return col
    branches = dict(info.children)
    if "body" not in branches:  # a concatenation
        col.slices = tuple(b[-1].out_shape[-1] if b else info.in_shape[-1] for _, b in info.children)
        if not expand:
            return col
        col.op, col.slices = "concat", ()
        lanes = [Seq(units=_chain(b, expand, fold)) for _, b in info.children]
        return Lanes(lanes=lanes, out=col, caption="" if info.kind == "concat" else op_label(info, written))
    shortcut = branches.get("shortcut")
    projection = [op_label(i) for i in shortcut or () if i.kind not in FOLDED]
    label = f"projection {', '.join(projection)}" if projection else ""
    named = info.kind != "residual"
    if not expand or not branches["body"]:  # an empty body leaves nothing to expand
        return (
            col
            if shortcut is None
            else Skip(body=Seq(units=[col]), label=label, act=getattr(info.layer, "act", None) or "")
        )
    body = Seq(units=_chain(branches["body"], expand, fold))
    if shortcut is None:
        body.caption = op_label(info, written) if named else ""
        return body
    if named:
        label = op_label(info, written) + (f"; {label}" if label else "")
    return Skip(body=body, label=label, act=getattr(info.layer, "act", None) or "")


def title(report: Report) -> str:
    """The heading: the network's name and its totals, as ``convcli params`` and ``flops`` count them."""
    from convcli.render.emit import count, human
    from convcli.render.networks import report_dict

    total = report_dict(report)["total"]
    return f"{report.network.name or 'network'}: {count(total['params'])} parameters, {human(total['macs'])} MACs"


def layout(report: Report, style: str = "3d", expand: bool = False, width: int = DEFAULT_WIDTH) -> Scene:
    """The whole picture of ``report``, wrapped into rows at most ``width`` pixels wide.

    >>> from convcli.networks.zoo import get
    >>> from convcli.networks.report import analyse
    >>> scene = layout(analyse(get("lenet5")))
    >>> [t.text for t in scene.of_class("shape")][:3]
    ['32 x 32 x 1', '28 x 28 x 6', '14 x 14 x 6']
    """
    if style not in STYLES:
        raise OutputError(f"--style {style!r} is not one of {', '.join(STYLES)}")
    if width < MIN_WIDTH:
        raise OutputError(f"--width {width} is below {MIN_WIDTH} pixels")
    fold = style == "3d"
    units = _chain(
        report.layers, expand, fold, [Col(shape=report.input_shape, op="input", kind="input")], report.network.layers
    )
    last_col(units[-1]).role = "output"
    return arrange(units, style, width, title(report))


def draw(
    report: Report,
    outputs: Sequence[PathLike],
    style: str = "3d",
    expand: bool = False,
    width: int = DEFAULT_WIDTH,
    inputs: Iterable[PathLike] = (),
) -> tuple[Scene, list[Path]]:
    """Lay ``report`` out once and write it to every file of ``outputs`` (``.svg`` or ``.png``).

    Every output is checked before anything is drawn; ``inputs`` (a spec file) are never written over.
    """
    from convcli.draw.files import check_drawing, write_drawing

    inputs = list(inputs)
    if not outputs:
        raise OutputError("give at least one output file (-o net.svg or -o net.png)")
    for path in outputs:
        check_drawing(path, inputs)
    scene = layout(report, style, expand, width)
    return scene, [write_drawing(path, scene, inputs) for path in outputs]
