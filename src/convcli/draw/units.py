"""What a network picture is made of: feature-map columns and the blocks that group them.

A :class:`Col` is one feature map (its shape, the layer that made it, the elementwise layers
folded into it); a :class:`Seq` is units one after another, a :class:`Skip` a residual block and
a :class:`Lanes` parallel branches that meet at a concatenation. ``arrange.py`` gives each unit
its size and place; this module says how big a glyph is and which lines of text go under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from convcli.draw.scene import GREY, INK, text_width
from convcli.networks.spec import ACTIVATIONS

FOLDED = frozenset({"bn", "dropout", *ACTIVATIONS})
"""Kinds drawn as a note under the map before them (3-D style) rather than as a map of their own."""
LINE = 1.3
"""Line height, in ems."""

COLOURS = {
    "input": "#d4d4d4",
    "conv": "#9ecae1",
    "dwconv": "#a1d99b",
    "convT": "#fdd0a2",
    "pool": "#fc9f8c",
    "flatten": "#dadaeb",
    "fc": "#bcbddc",
    "block": "#fdc086",
    "inception": "#b8e0b0",
    "mobile": "#a1d99b",
    "elementwise": "#f0f0f0",
}
_COLOUR_OF = {
    "conv": "conv",
    "dwconv": "dwconv",
    "convT": "convT",
    "flatten": "flatten",
    "fc": "fc",
    "rbf": "fc",
    "res": "block",
    "bottleneck": "block",
    "residual": "block",
    "inception": "inception",
    "concat": "inception",
    "invres": "mobile",
    "dwsep": "mobile",
    **dict.fromkeys(("maxpool", "avgpool", "subsample", "gap", "gmp", "adaptivepool"), "pool"),
    **dict.fromkeys(FOLDED, "elementwise"),
}


def colour(kind: str) -> str:
    """The fill of a map made by a layer of ``kind`` (the input's grey for anything unknown)."""
    return COLOURS[_COLOUR_OF.get(kind, "input")]


def shape_label(shape: tuple) -> str:
    """``56 x 56 x 256`` for a map, ``4096`` for a vector, as the tables print them."""
    return " x ".join(map(str, shape))


def _log2(v: int) -> float:
    """log2 interpolated linearly between powers of two (exact at them, monotonic, no math import)."""
    top = 1 << (v.bit_length() - 1)
    return v.bit_length() - 1 + (v / top - 1)


@dataclass(frozen=True)
class Label:
    text: str
    size: float
    bold: bool = False
    fill: str = INK
    cls: str = ""

    @property
    def width(self) -> float:
        return text_width(self.text, self.size, self.bold)

    @property
    def height(self) -> float:
        return self.size * LINE


@dataclass
class Box:
    """Sizes a unit gets from measuring: its width, its extent above the axis (``up``), its glyphs'
    extent below it (``down``: the band's labels start under the lowest), the height of its labels,
    and ``low``, what reaches below the axis on its own (stacked lanes with their own labels)."""

    w: float = 0
    up: float = 0
    down: float = 0
    label_h: float = 0
    low: float = 0


@dataclass
class Col(Box):
    """One feature map."""

    shape: tuple = ()
    op: str = ""
    kind: str = ""
    folded: list[str] = field(default_factory=list)
    role: str = ""
    slices: tuple[int, ...] = ()
    """Channels of each concatenated branch, drawn as divisions of the box."""


@dataclass
class Seq(Box):
    """Units one after another on one axis; ``pair`` marks a depthwise/pointwise pair, and a
    ``caption`` names a block without a skip connection over a bracket."""

    units: list = field(default_factory=list)
    pair: bool = False
    caption: str = ""
    pad: float = 0


@dataclass
class Skip(Box):
    """A residual block: its body, and a skip arc from the line before it to the ``+`` after it,
    labelled with ``label``; ``act`` is applied after the addition."""

    body: Seq = field(default_factory=Seq)
    label: str = ""
    act: str = ""
    lead: float = 0
    tail: float = 0


@dataclass
class Lanes(Box):
    """Parallel branches, stacked, joined at the concatenation whose output map is ``out``."""

    lanes: list[Seq] = field(default_factory=list)
    out: Col = field(default_factory=Col)
    caption: str = ""
    heights: list[float] = field(default_factory=list)


Unit = Col | Seq | Skip | Lanes


def last_col(unit: Unit) -> Col:
    """The map a unit ends in (where the next layer's arrow starts)."""
    if isinstance(unit, Col):
        return unit
    if isinstance(unit, Seq):
        return last_col(unit.units[-1])
    if isinstance(unit, Skip):
        return last_col(unit.body)
    return unit.out


def labels(col: Col, style: str) -> list[Label]:
    """The lines under a map: its shape, what made it, what was folded into it, its role."""
    lines = []
    if style == "3d":
        lines = [Label(shape_label(col.shape), 11, True, cls="shape"), Label(col.op, 10, cls="op")]
        if col.folded:
            lines.append(Label(", ".join(col.folded), 9, fill=GREY, cls="folded"))
    if col.role:
        lines.append(Label(col.role, 10, True, fill="#b2182b", cls="role"))
    return lines


def inside(col: Col) -> list[Label]:
    """The flat style's two lines inside the rectangle."""
    return [Label(col.op, 10, True, cls="op"), Label(shape_label(col.shape), 10, cls="shape")]


@dataclass(frozen=True)
class Glyph:
    """A box: a front face ``t`` wide and ``h`` high centred on the axis, pushed ``d`` up and right."""

    t: float
    h: float
    d: float

    @property
    def w(self) -> float:
        return self.t + self.d

    @property
    def exit(self) -> float:
        """Where an arrow leaves the box at the axis, from its left edge."""
        return self.t + min(self.d, self.h / 2)


def glyph(col: Col, style: str) -> Glyph:
    """Sizes on a log scale, so that 224 and 7 both read and 2048 channels do not fill the page.

    >>> glyph(Col(shape=(224, 224, 3)), "3d").h > 2 * glyph(Col(shape=(7, 7, 3)), "3d").h
    True
    """
    if style == "flat":
        return Glyph(max(lab.width for lab in inside(col)) + 14, 38, 0)
    if len(col.shape) == 1:
        return Glyph(9, 6 + 9 * _log2(col.shape[0]), 3)
    h, w, c = col.shape
    return Glyph(3 + 4.5 * _log2(c), 6 + 14 * _log2(h), 0.45 * (4 + 10 * _log2(w)))
