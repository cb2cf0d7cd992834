"""Placing a network's units: measured once, packed into rows, emitted as one Scene.

Every unit owns a horizontal interval of its row and puts all its text inside it (labels under
the glyphs, arc and bracket captions above them), so text can only meet text of the same unit,
and there it is stacked. Units are never split across rows; the chain runs down and back to the
left margin between rows, and an arc at a row's start leaves from that incoming line.
"""

from __future__ import annotations

from convcli.draw.scene import (
    ASCENT,
    GREY,
    INK,
    Circle,
    Item,
    Line,
    Point,
    Polygon,
    Scene,
    Text,
    arrow,
    rect,
    shade,
    text_width,
)
from convcli.draw.units import LINE, Col, Lanes, Seq, Skip, Unit, colour, glyph, inside, labels

LABEL_GAP = 7  # between a band's lowest glyph and its first label
ROW_GAP, LEFT, RIGHT, TOP = 30, 34, 20, 44
LEAD, TAIL, ADD_R, ARC_RISE = 16, 26, 6, 12
FAN, JOIN, LANE_GAP = 20, 26, 12
CAPTION = 10 * LINE  # height of a 10-pixel caption line


class Layout:
    """Measures units and emits their items; ``style`` is "3d" or "flat"."""

    def __init__(self, style: str) -> None:
        self.style = style
        self.items: list[Item] = []

    def measure(self, u: Unit) -> Unit:
        """Sets ``u``'s box (see :class:`~convcli.draw.units.Box`) and those of its parts."""
        if isinstance(u, Col):
            g, lines = glyph(u, self.style), labels(u, self.style)
            u.w = max(g.w + 26, max((lab.width for lab in lines), default=0) + 12)
            u.up, u.down, u.label_h = g.h / 2 + g.d, g.h / 2, sum(lab.height for lab in lines)
        elif isinstance(u, Seq):
            parts = [self.measure(v) for v in u.units]
            u.w = sum(v.w for v in parts)
            u.up, u.down = max(v.up for v in parts), max(v.down for v in parts)
            u.label_h, u.low = max(v.label_h for v in parts), max(v.low for v in parts)
            if u.caption:
                u.pad = max(0.0, text_width(u.caption, 10) + 12 - u.w) / 2
                u.w += 2 * u.pad
                u.up += ARC_RISE + CAPTION
        elif isinstance(u, Skip):
            b = self.measure(u.body)
            u.tail = max(TAIL, text_width(u.act, 9) + 8)
            # the arc label sits between the arc's two feet: move the body right until it fits
            need = text_width(u.label, 10) + 12 if u.label else 0
            u.lead = LEAD + max(0.0, need - (LEAD / 2 + b.w + u.tail / 2))
            u.w = u.lead + b.w + u.tail
            u.up = b.up + ARC_RISE + (CAPTION if u.label else 0)
            u.down, u.label_h, u.low = b.down, b.label_h, b.low
        else:
            out = self.measure(u.out)
            u.heights = []
            for lane in u.lanes:
                if lane.units:
                    self.measure(lane)
                    u.heights.append(lane.up + max(lane.down + LABEL_GAP + lane.label_h, lane.low))
                else:
                    u.heights.append(12)
            stack = sum(u.heights) + LANE_GAP * (len(u.lanes) - 1)
            u.w = FAN + max((lane.w for lane in u.lanes), default=0) + JOIN + out.w
            u.up = max(stack / 2 + (CAPTION if u.caption else 0), out.up)
            u.down, u.label_h, u.low = out.down, out.label_h, stack / 2
        return u

    def place(self, u: Unit, x: float, axis: float, label_y: float, x_in: float | None) -> float:
        """Emits ``u`` with its left edge at ``x``, and the arrow into it from ``x_in`` on the axis;
        returns where its output leaves. ``label_y`` is where the band's labels start."""
        if isinstance(u, Col):
            return self._col(u, x, axis, label_y, x_in)
        if isinstance(u, Seq):
            return self._seq(u, x, axis, label_y, x_in)
        if isinstance(u, Skip):
            return self._skip(u, x, axis, label_y, x_in)
        return self._lanes(u, x, axis, label_y, x_in)

    def _col(self, u: Col, x: float, axis: float, label_y: float, x_in: float | None) -> float:
        g = glyph(u, self.style)
        gx, top, bottom = x + (u.w - g.w) / 2, axis - g.h / 2, axis + g.h / 2
        if x_in is not None:
            self.items += arrow([(x_in, axis), (gx, axis)])
        fill = colour(u.kind)
        self.items.append(rect(gx, top, g.t, g.h, fill, width=0.8, cls="map"))
        if g.d:
            t, d = g.t, g.d
            top_face = ((gx, top), (gx + t, top), (gx + t + d, top - d), (gx + d, top - d))
            side_face = ((gx + t, top), (gx + t + d, top - d), (gx + t + d, bottom - d), (gx + t, bottom))
            self.items.append(Polygon(top_face, shade(fill, 0.4), width=0.8))
            self.items.append(Polygon(side_face, shade(fill, -0.13), width=0.8))
        at, total = 0, sum(u.slices)
        for part in u.slices[:-1]:  # where each branch's channels end in the concatenation
            at += part
            sx = gx + g.t * at / total
            self.items.append(Line(((sx, bottom), (sx, top), (sx + g.d, top - g.d)), INK, 0.6))
        if self.style == "flat":
            for lab, base in zip(inside(u), (axis - 3, axis + 12)):
                self.items.append(Text(gx + g.t / 2, base, lab.text, lab.size, lab.bold, fill=lab.fill, cls=lab.cls))
        y = label_y
        for lab in labels(u, self.style):
            base = y + ASCENT * lab.size
            self.items.append(Text(x + u.w / 2, base, lab.text, lab.size, lab.bold, fill=lab.fill, cls=lab.cls))
            y += lab.height
        return gx + g.exit

    def _seq(self, u: Seq, x: float, axis: float, label_y: float, x_in: float | None) -> float:
        start, x0 = len(self.items), x
        x += u.pad
        for v in u.units:
            x_in = self.place(v, x, axis, label_y, x_in)
            x += v.w
        # an empty Seq is never placed (an empty lane is drawn as a bare line), and a placed unit
        # returns where its output leaves
        assert x_in is not None
        x += u.pad
        if u.pair:  # behind the pair, so painted first
            top, bottom = axis - u.up - 4, label_y + u.label_h + 2
            self.items.insert(start, rect(x0 + 3, top, x - x0 - 6, bottom - top, "#eef6ec", "#c7e3c2"))
        if u.caption:
            y = axis - u.up + CAPTION + 2  # clear of a pair's background, which reaches 4 above its boxes
            self.items.append(Line(((x0 + 4, y + 4), (x0 + 4, y), (x - 4, y), (x - 4, y + 4)), GREY, 1, cls="group"))
            self.items.append(Text((x0 + x) / 2, y - 3, u.caption, 10, fill=GREY, cls="block"))
        return x_in

    def _skip(self, u: Skip, x: float, axis: float, label_y: float, x_in: float | None) -> float:
        jx = x + LEAD / 2
        if x_in is not None:
            self.items.append(Line(((x_in, axis), (jx, axis))))
        out = self.place(u.body, x + u.lead, axis, label_y, jx)
        cx = x + u.lead + u.body.w + u.tail / 2
        self.items += arrow([(out, axis), (cx - ADD_R, axis)])
        arc_y = axis - u.body.up - ARC_RISE
        self.items += arrow(rounded([(jx, axis), (jx, arc_y), (cx, arc_y), (cx, axis - ADD_R)], 6), cls="skip")
        self.items.append(Circle(cx, axis, ADD_R, cls="add"))
        self.items.append(Line(((cx - 3.5, axis), (cx + 3.5, axis))))
        self.items.append(Line(((cx, axis - 3.5), (cx, axis + 3.5))))
        if u.label:
            self.items.append(Text((jx + cx) / 2, arc_y - 4, u.label, 10, fill=GREY, cls="skip-label"))
        if u.act:
            self.items.append(Text(cx, axis + ADD_R + 11, u.act, 9, fill=GREY, cls="folded"))
        return cx + ADD_R

    def _lanes(self, u: Lanes, x: float, axis: float, label_y: float, x_in: float | None) -> float:
        stack = sum(u.heights) + LANE_GAP * (len(u.lanes) - 1)
        top = axis - stack / 2
        width = max((lane.w for lane in u.lanes), default=0)
        fx, jx = x + FAN / 2, x + FAN + width + JOIN / 2
        if x_in is not None:
            self.items.append(Line(((x_in, axis), (fx, axis))))
        axes = [axis]
        for lane, height in zip(u.lanes, u.heights):
            lane_axis = top + (lane.up if lane.units else height / 2)
            axes.append(lane_axis)
            out = fx
            if lane.units:
                out = self.place(lane, x + FAN, lane_axis, lane_axis + lane.down + LABEL_GAP, fx)
            self.items.append(Line(((out, lane_axis), (jx, lane_axis))))
            top += height + LANE_GAP
        self.items.append(Line(((fx, min(axes)), (fx, max(axes)))))
        self.items.append(Line(((jx, min(axes)), (jx, max(axes))), INK, 2.4, cls="concat"))
        if u.caption:
            self.items.append(Text(x + FAN + width / 2, axis - stack / 2 - 5, u.caption, 10, fill=GREY, cls="block"))
        return self.place(u.out, x + FAN + width + JOIN, axis, label_y, jx)


def rounded(points: list[Point], r: float) -> list[Point]:
    """An orthogonal polyline with each corner cut short by ``r`` and bent through one point."""

    def toward(a: Point, b: Point, k: float) -> Point:
        length = max(abs(b[0] - a[0]) + abs(b[1] - a[1]), 1e-9)
        return (a[0] + (b[0] - a[0]) * k / length, a[1] + (b[1] - a[1]) * k / length)

    out = [points[0]]
    for a, b, c in zip(points, points[1:], points[2:]):
        k = min(r, (abs(b[0] - a[0]) + abs(b[1] - a[1])) / 2, (abs(c[0] - b[0]) + abs(c[1] - b[1])) / 2)
        p, q = toward(b, a, k), toward(b, c, k)
        out += [p, (0.3 * (p[0] + q[0]) + 0.4 * b[0], 0.3 * (p[1] + q[1]) + 0.4 * b[1]), q]
    out.append(points[-1])
    return out


def arrange(units: list[Unit], style: str, width: float, heading: str) -> Scene:
    """The chain of ``units`` in rows at most ``width`` wide (a unit wider than that gets a row
    of its own), under a ``heading``."""
    drawing = Layout(style)
    rows: list[list[Unit]] = [[]]
    used = 0.0
    for u in units:
        drawing.measure(u)
        if rows[-1] and used + u.w > width:
            rows.append([])
            used = 0.0
        rows[-1].append(u)
        used += u.w
    drawing.items.append(Text(LEFT, 26, heading, 14, True, "start", cls="title"))
    right = LEFT + text_width(heading, 14, True)
    y: float = TOP
    x_in: float | None = None
    for r, row in enumerate(rows):
        axis = y + max(u.up for u in row) + 6
        label_y = axis + max(u.down for u in row) + LABEL_GAP
        bottom = max(label_y + max(u.label_h for u in row), axis + max(u.low for u in row))
        x: float = LEFT
        for u in row:
            x_in = drawing.place(u, x, axis, label_y, x_in)
            x += u.w
        right = max(right, x)
        assert x_in is not None  # every row holds a unit, and a placed unit says where its output leaves
        if r + 1 < len(rows):  # down and back to the left margin, through the gap between the rows
            gap_y, next_axis = bottom + ROW_GAP / 2, bottom + ROW_GAP + max(u.up for u in rows[r + 1]) + 6
            path = [(x_in, axis), (x + 6, axis), (x + 6, gap_y), (LEFT - 16, gap_y), (LEFT - 16, next_axis)]
            drawing.items.append(Line(tuple(rounded(path, 6))))
            x_in = LEFT - 16
        y = bottom + ROW_GAP
    return Scene(right + RIGHT, y - ROW_GAP + 16, drawing.items, heading)
