"""A :class:`~convcli.draw.scene.Scene` as SVG text: standard library only.

Each item keeps its ``cls`` as the SVG ``class`` attribute (``shape``, ``op``, ``skip``, ...),
so a test or a style sheet can find the shape labels and the skip connections of a drawing.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from convcli.draw.scene import FONT_FAMILY, WHITE, Circle, Line, Polygon, Scene, Text


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _points(points) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


def _paint(fill: str | None, stroke: str | None, width: float) -> str:
    out = f' fill="{fill or "none"}"'
    if stroke:
        out += f' stroke="{stroke}" stroke-width="{_num(width)}"'
    return out


def _cls(item) -> str:
    return f" class={quoteattr(item.cls)}" if item.cls else ""


def _element(item) -> str:
    if isinstance(item, Polygon):
        return f'<polygon points="{_points(item.points)}"{_paint(item.fill, item.stroke, item.width)}{_cls(item)}/>'
    if isinstance(item, Line):
        return (
            f'<polyline points="{_points(item.points)}"{_paint(None, item.stroke, item.width)} '
            f'stroke-linejoin="round"{_cls(item)}/>'
        )
    if isinstance(item, Circle):
        return (
            f'<circle cx="{_num(item.cx)}" cy="{_num(item.cy)}" r="{_num(item.r)}"'
            f"{_paint(item.fill, item.stroke, item.width)}{_cls(item)}/>"
        )
    if isinstance(item, Text):
        weight = ' font-weight="bold"' if item.bold else ""
        return (
            f'<text x="{_num(item.x)}" y="{_num(item.y)}" font-size="{_num(item.size)}"{weight} '
            f'text-anchor="{item.anchor}" fill="{item.fill}"{_cls(item)}>{escape(item.text)}</text>'
        )
    raise TypeError(f"not a scene item: {item!r}")


def to_svg(scene: Scene) -> str:
    """The whole document, one element a line."""
    w, h = _num(scene.width), _num(scene.height)
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f"font-family={quoteattr(FONT_FAMILY)}>",
    ]
    if scene.title:
        head.append(f"<title>{escape(scene.title)}</title>")
    head.append(f'<rect width="100%" height="100%" fill="{WHITE}"/>')
    return "\n".join(head + [_element(item) for item in scene.items] + ["</svg>", ""])
