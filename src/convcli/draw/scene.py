"""A picture as data: a size and a list of flat shapes in pixel coordinates.

A :class:`Scene` is computed once and handed to every writer (``svg.py`` writes it as text,
``raster.py`` paints it with Pillow), so the SVG and the PNG of a drawing cannot disagree. Text
widths come from a table of DejaVu Sans advance widths, the font both writers ask for first; it is
also among the widest common sans fonts (Verdana shares its metrics), so a label measured here
does not grow in a browser that substitutes another one. Pure Python: drawing an SVG needs
neither numpy nor Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Point = tuple[float, float]

INK, GREY, WHITE = "#282828", "#6e6e6e", "#ffffff"
FONT_FAMILY = "DejaVu Sans, Verdana, sans-serif"
ASCENT, DESCENT = 0.93, 0.24
"""DejaVu Sans ascent and descent, in ems."""

# Advance widths of printable ASCII (32 to 126) in thousandths of an em: DejaVu Sans Book and Bold.
_BOOK = (
    "318 401 460 838 636 950 780 275 390 390 500 838 318 361 318 337 636 636 636 636 636 636 636 636 636 636 "
    "337 337 838 838 838 531 1000 684 686 698 770 632 575 775 752 295 295 656 557 863 748 787 603 787 695 635 "
    "611 732 684 989 685 611 685 390 337 390 838 500 500 613 635 550 635 615 352 635 634 278 278 579 278 974 "
    "634 612 635 635 411 521 392 634 592 818 592 592 525 636 337 636 838"
)
_BOLD = (
    "348 456 521 838 696 1002 872 306 457 457 523 838 380 415 380 365 696 696 696 696 696 696 696 696 696 696 "
    "400 400 838 838 838 580 1000 774 762 734 830 683 683 821 837 372 372 775 637 995 837 850 733 850 770 720 "
    "682 812 774 1103 771 724 725 457 365 457 838 500 500 675 716 593 716 678 435 716 712 343 343 665 343 1042 "
    "712 687 716 716 493 595 478 712 652 924 645 652 582 712 365 712 838"
)
_WIDTHS = {False: tuple(map(int, _BOOK.split())), True: tuple(map(int, _BOLD.split()))}


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` at ``size`` pixels; a character outside ASCII counts as one em.

    >>> text_width("224 x 224 x 3", 10)
    69.08
    """
    table = _WIDTHS[bold]
    total = sum(table[ord(c) - 32] if 32 <= ord(c) < 127 else 1000 for c in text)
    return round(total * size / 1000, 2)


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    fill: str | None
    stroke: str | None = INK
    width: float = 1.0
    cls: str = ""


@dataclass(frozen=True)
class Line:
    """An open polyline."""

    points: tuple[Point, ...]
    stroke: str = INK
    width: float = 1.2
    cls: str = ""


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float
    fill: str | None = WHITE
    stroke: str | None = INK
    width: float = 1.2
    cls: str = ""


@dataclass(frozen=True)
class Text:
    """One line of text; ``y`` is the baseline and ``anchor`` is start, middle or end of ``x``."""

    x: float
    y: float
    text: str
    size: float = 11
    bold: bool = False
    anchor: str = "middle"
    fill: str = INK
    cls: str = ""

    @property
    def width(self) -> float:
        return text_width(self.text, self.size, self.bold)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the ink the text may cover."""
        w = self.width
        left = self.x - {"start": 0, "middle": w / 2, "end": w}[self.anchor]
        return left, self.y - ASCENT * self.size, left + w, self.y + DESCENT * self.size


Item = Polygon | Line | Circle | Text


@dataclass
class Scene:
    """A picture: ``width`` x ``height`` pixels on white, ``items`` painted in order."""

    width: float
    height: float
    items: list[Item] = field(default_factory=list)
    title: str = ""

    def of_class(self, cls: str) -> list[Item]:
        return [item for item in self.items if item.cls == cls]

    @property
    def texts(self) -> list[Text]:
        return [item for item in self.items if isinstance(item, Text)]


def rect(x: float, y: float, w: float, h: float, fill: str | None, stroke: str | None = INK, **kw) -> Polygon:
    """The axis-aligned rectangle with top-left corner (x, y)."""
    return Polygon(((x, y), (x + w, y), (x + w, y + h), (x, y + h)), fill, stroke, **kw)


def arrow(points: list[Point], stroke: str = INK, width: float = 1.2, head: float = 6.0, cls: str = "") -> list[Item]:
    """A polyline with a filled arrowhead at its last point (the line stops at the head's base)."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    head = min(head, length)
    bx, by = x1 - ux * head, y1 - uy * head
    wing = head * 0.45
    tip = Polygon(((x1, y1), (bx - uy * wing, by + ux * wing), (bx + uy * wing, by - ux * wing)), stroke, None)
    return [Line(tuple(points[:-1]) + ((bx, by),), stroke, width, cls), tip]


def shade(colour: str, amount: float) -> str:
    """``colour`` mixed with white (``amount`` > 0) or black (``amount`` < 0).

    >>> shade("#808080", 0.5), shade("#808080", -0.5)
    ('#c0c0c0', '#404040')
    """
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(v + (target - v) * abs(amount)) for v in rgb]
    return "#" + "".join(f"{v:02x}" for v in mixed)


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (left, top, right, bottom) boxes share interior points."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def overlapping_texts(scene: Scene) -> list[tuple[Text, Text]]:
    """Every pair of texts whose boxes intersect (a sweep along x)."""
    texts = sorted(scene.texts, key=lambda t: t.bbox[0])
    pairs: list[tuple[Text, Text]] = []
    active: list[Text] = []
    for t in texts:
        box = t.bbox
        active = [a for a in active if a.bbox[2] > box[0]]
        pairs += [(a, t) for a in active if overlaps(a.bbox, box)]
        active.append(t)
    return pairs
