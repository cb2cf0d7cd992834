"""Animated window arithmetic: what ``floor((n + 2p - f)/s) + 1`` counts, one frame per output.

``convcli shape-calc -n 5 -f 3 -s 2 -p 1 --animate conv.gif`` draws the padded n x n input (the
padding cells marked), the f x f window at each output position, the output grid filling in,
and the formula with its numbers; rows and columns that the floor drops are shaded and named.
The same setting applies to both axes, as ``shape-calc`` computes it for one. Sizes come from
:func:`convcli.shapes.axis`; the window of output ``i`` starts at ``i * s``, by definition.

A transposed convolution is drawn as what it computes: a stride-1 convolution over the input
spread ``s`` apart (``s - 1`` zeros between neighbours) and padded by ``d(f - 1) - p`` on each
side, with the output padding as one more row and column at the end.

``convcli conv MATRIX --kernel K --animate conv.gif`` draws the same frames with `Numbers`: the
values in the cells, and under each frame the products and the sum that land in its output cell.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from convcli.draw.scene import GREY, INK, Line, Scene, Text, arrow, rect, text_width
from convcli.errors import OutputError
from convcli.outputs import PathLike
from convcli.shapes import OneLayer

MAX_FRAMES = 400
INPUT, PAD, ZERO = "input", "pad", "zero"
FILLS = {INPUT: "#deebf7", PAD: "#f4f4f4", ZERO: "#fff3b0", "dropped": "#bdbdbd"}
TAP, TAP_PAD, WINDOW = "#fdb863", "#fee0b6", "#e66101"
DONE, CURRENT = "#9ecae1", WINDOW
MARGIN, GAP, TOP = 24, 56, 72


@dataclass(frozen=True)
class Track:
    """One axis of the grid the window walks: what each position holds, the window's step, its
    dilation and size, the number of outputs, and how many trailing positions no window covers."""

    cells: tuple[str, ...]
    step: int
    d: int
    f: int
    out: int
    dropped: int = 0

    def taps(self, i: int) -> range:
        """The positions output ``i`` reads."""
        return range(i * self.step, i * self.step + self.d * (self.f - 1) + 1, self.d)


def track(layer: OneLayer) -> Track:
    """The grid of one axis that shape-calc's result ``layer`` walks.

    >>> from convcli.shapes import axis
    >>> t = track(axis(5, 3, 2, 1))
    >>> t.cells.count("pad"), t.out, list(t.taps(1))
    (2, 3, [2, 3, 4])
    >>> track(axis(2, 3, 2, transposed=True)).cells
    ('pad', 'pad', 'input', 'zero', 'input', 'pad', 'pad')
    """
    n, f, d = layer.n, layer.f, layer.d
    if layer.kind != "convT":
        cells = (PAD,) * layer.p_lo + (INPUT,) * n + (PAD,) * layer.p_hi
        return Track(cells, layer.s, d, f, layer.out, layer.dropped)
    stride, q = layer.s, d * (f - 1) - layer.p_lo
    spread = (n - 1) * stride + 1
    # t is the position in the spread-out input, from -q; q < 0 crops it
    cells = tuple(
        (INPUT if t % stride == 0 else ZERO) if 0 <= t < spread else PAD
        for t in range(-q, spread + q + layer.output_padding)
    )
    return Track(cells, 1, d, f, layer.out)


@dataclass(frozen=True)
class Numbers:
    """A convolution of a typed matrix: the padded input (the whole grid the window walks), the
    kernel as it is applied (flipped for ``--flip``) and the op's output, so each frame can show
    the products and the sum that lands in its output cell."""

    grid: tuple[tuple[float, ...], ...]
    kernel: tuple[tuple[float, ...], ...]
    output: tuple[tuple[float, ...], ...]

    def products(self, t: Track, i: int, j: int) -> str:
        """The sum output (i, j) is, term by term: ``10x1 + 10x0 + ... = 30``."""
        terms = [
            f"{_num(self.grid[r][c], paren=True)}x{_num(self.kernel[a][b], paren=True)}"
            for a, r in enumerate(t.taps(i))
            for b, c in enumerate(t.taps(j))
        ]
        return f"{' + '.join(terms)} = {_num(self.output[i][j])}"


def _num(v: float, paren: bool = False) -> str:
    text = str(int(v)) if float(v).is_integer() else f"{v:.4g}"
    return f"({text})" if paren and v < 0 else text


@dataclass(frozen=True)
class Frame:
    """Frame ``k`` fills output ``position`` (row, column), the ``filled``-th output in row-major order."""

    k: int
    position: tuple[int, int]
    filled: int
    scene: Scene


def chosen(total: int, cap: int | None) -> list[int]:
    """Which outputs get a frame: all of them, or ``cap`` spread evenly from the first to the last.

    >>> chosen(9, None), chosen(100, 4)
    ([0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 33, 66, 99])
    """
    if cap is not None and cap < 1:
        raise OutputError(f"--frames {cap} must be at least 1")
    if cap is None and total > MAX_FRAMES:
        raise OutputError(
            f"the output has {total:,} positions, more frames than {MAX_FRAMES}: give --frames N to show N of them"
        )
    if cap is not None and cap > MAX_FRAMES:
        raise OutputError(f"--frames {cap} is more than {MAX_FRAMES}")
    if cap is None or cap >= total:
        return list(range(total))
    if cap == 1:
        return [0]
    return [round(k * (total - 1) / (cap - 1)) for k in range(cap)]


def _edge(c: int, colour: str) -> str | None:
    """Cell outlines, except on cells too small for them to be more than a mesh."""
    return colour if c >= 6 else None


def _span(taps: range) -> str:
    return f"{taps[0]}-{taps[-1]}" if taps.step == 1 else ", ".join(map(str, taps))


def _title(layer: OneLayer) -> str:
    what = {"convT": "transposed convolution", "pool": "pooling", "conv": "convolution"}[layer.kind]
    pad = f"p={layer.padding}" if isinstance(layer.padding, str) else f"p={layer.p_lo}"
    if layer.padding == "tf":
        pad = "p=same (TensorFlow)"
    parts = [f"n={layer.n}", f"f={layer.f}", f"s={layer.s}", pad]
    parts += [f"d={layer.d}"] * (layer.d != 1) + [f"output padding {layer.output_padding}"] * bool(layer.output_padding)
    parts += ["ceil"] * layer.ceil
    return f"{what}: {', '.join(parts)}"


def frames(layer: OneLayer, cap: int | None = None, numbers: Numbers | None = None) -> list[Frame]:
    """The frames of the animation of shape-calc's result ``layer``, one per output position (or
    ``cap`` of them); with ``numbers`` every cell shows its value and each frame its sum."""
    from convcli.render.networks import axis_text

    t, result = track(layer), layer
    n, f, d, output_padding = layer.n, layer.f, layer.d, layer.output_padding
    picks = chosen(t.out * t.out, cap)
    formula, dropped = axis_text(result)
    length = len(t.cells)
    c = max(4, min(36, 360 // max(length, t.out)))
    if numbers is not None:  # room for a number in each cell
        widest = max(len(_num(v)) for grid in (numbers.grid, numbers.output) for row in grid for v in row)
        c = max(c, 10 + 7 * widest)
    heading = _title(layer)
    if layer.kind == "convT":
        q = d * (f - 1) - result.p_lo
        pads = f"{q}" if not output_padding else f"{q} before, {q + output_padding} after"
        grid_label = f"input {n} x {n} spread {result.s} apart, padded {pads} -> {length} x {length}"
        notes = [f"computed as a stride-1 convolution over the spread input, padded d(f-1) - p = {q}"]
        if output_padding:
            notes.append(f"the output padding adds {output_padding} more row(s) and column(s) at the end")
    else:
        pads = f"{result.p_lo}" if result.p_lo == result.p_hi else f"{result.p_lo} before, {result.p_hi} after"
        grid_label = f"input {n} x {n}" + (f", padded {pads} -> {length} x {length}" if length != n else "")
        notes = [dropped] if dropped else []
    if t.dropped:
        first, last = length - t.dropped, length - 1
        which = f"{first}" if first == last else f"{first}-{last}"
        plural = "s" * (first != last)
        notes.append(f"dropped by the floor (shaded): row{plural} {which} and column{plural} {which}")
    reach = max(length, max(t.taps(t.out - 1)) + 1)  # a ceil-mode window may hang over the edge
    if reach > length:
        notes.append("ceil mode: the last window hangs over the edge of the padded input and still counts")
    x_out = MARGIN + max(reach * c + GAP, text_width(grid_label, 11) + 24)
    legend = [(FILLS[INPUT], "input")]
    legend += [(FILLS[PAD], "padding")] * (PAD in t.cells) + [(FILLS[ZERO], "inserted zeros")] * (ZERO in t.cells)
    legend += [(FILLS["dropped"], "dropped")] * bool(t.dropped) + [(TAP, "window")]
    if set(t.cells) != {INPUT} or reach > length:
        legend.append((TAP_PAD, "window off the input"))
    static = _static(t, c, x_out, reach, heading, grid_label, formula, notes, legend, numbers)
    height, width = static.height, static.width
    sums = {}
    if numbers is not None:
        sums = {index: numbers.products(t, *divmod(index, t.out)) for index in picks}
        width = max([width, *(2 * MARGIN + text_width(line, 12) for line in sums.values())])
    out = []
    for k, index in enumerate(picks):
        i, j = divmod(index, t.out)
        scene = Scene(width, height + 20 * bool(sums), list(static.items), heading)
        rows, cols = t.taps(i), t.taps(j)
        for r in rows:
            for col in cols:
                inside = r < length and col < length
                fill = TAP if inside and t.cells[r] == INPUT == t.cells[col] else TAP_PAD
                scene.items.append(rect(MARGIN + col * c, TOP + r * c, c, c, fill, _edge(c, "#a0a0a0"), width=0.6))
                if numbers is not None and inside:
                    value = _num(numbers.grid[r][col])
                    scene.items.append(
                        Text(MARGIN + (col + 0.5) * c, TOP + (r + 0.5) * c + 4, value, 11, cls="tap-value")
                    )
        x0, y0 = MARGIN + cols[0] * c, TOP + rows[0] * c
        side = (rows[-1] - rows[0] + 1) * c
        scene.items.append(rect(x0, y0, side, side, None, WINDOW, width=2.5, cls="window"))
        for m in range(t.out * t.out):
            fill = CURRENT if m == index else DONE if m < index else "#ffffff"
            r, col = divmod(m, t.out)
            cls = "current" if m == index else "output"
            scene.items.append(rect(x_out + col * c, TOP + r * c, c, c, fill, _edge(c, "#8c8c8c"), width=0.6, cls=cls))
            if numbers is not None and m <= index:
                value = _num(numbers.output[r][col])
                ink = "#ffffff" if m == index else INK  # dark text on the dark current cell would not read
                at = (x_out + (col + 0.5) * c, TOP + (r + 0.5) * c + 4)
                scene.items.append(Text(*at, value, 11, fill=ink, cls=f"{cls}-value"))
        where = f"rows {_span(rows)}, columns {_span(cols)}"
        line = f"output ({i}, {j}), {index + 1} of {t.out * t.out}: the window at {where} of the grid"
        scene.items.append(Text(MARGIN, height - 16, line, 12, anchor="start", cls="position"))
        if index in sums:
            scene.items.append(Text(MARGIN, height + 4, sums[index], 12, anchor="start", cls="sum"))
        out.append(Frame(k, (i, j), index + 1, scene))
    return out


def _static(
    t: Track, c: int, x_out: float, reach: int, heading: str, grid_label: str, formula: str, notes, legend, numbers
) -> Scene:
    """What every frame shares: the grids, their names, the formula, the notes and the legend."""
    length = len(t.cells)
    items: list = [Text(MARGIN, 30, heading, 14, True, "start", cls="title")]
    items.append(Text(MARGIN, TOP - 10, grid_label, 11, anchor="start", fill=GREY))
    out_label = f"output {t.out} x {t.out}"
    items.append(Text(x_out, TOP - 10, out_label, 11, anchor="start", fill=GREY))
    for r in range(length):
        for col in range(length):
            kinds = {t.cells[r], t.cells[col]}
            kind = PAD if PAD in kinds else ZERO if ZERO in kinds else INPUT
            if max(r, col) >= length - t.dropped:
                kind = "dropped"
            x, y = MARGIN + col * c, TOP + r * c
            items.append(rect(x, y, c, c, FILLS[kind], _edge(c, "#b4b4b4"), width=0.6, cls=kind))
            if kind == PAD and c >= 8 and numbers is None:
                items.append(Line(((x + 2, y + c - 2), (x + c - 2, y + 2)), "#cfcfcf", 0.6))
            if numbers is not None:
                items.append(Text(x + c / 2, y + c / 2 + 4, _num(numbers.grid[r][col]), 11, cls="value"))
    mid = TOP + min(length, t.out) * c / 2
    items += arrow([(MARGIN + length * c + 10, mid), (x_out - 10, mid)], GREY, 1.5)
    y = TOP + max(reach, t.out) * c + 26
    for text in [formula] + list(notes):
        items.append(Text(MARGIN, y, text, 12, anchor="start", fill=INK, cls="formula" if text is formula else "note"))
        y += 18
    key_x: float = MARGIN
    for fill, name in legend:
        items.append(rect(key_x, y - 10, 12, 12, fill, "#8c8c8c", width=0.6))
        items.append(Text(key_x + 17, y, name, 11, anchor="start"))
        key_x += 17 + text_width(name, 11) + 16
    widths = [MARGIN + text_width(text, 12) for text in [formula, *notes]]
    width = max([x_out + t.out * c, key_x, MARGIN + text_width(heading, 14, True), *widths]) + MARGIN
    position = f"output ({t.out - 1}, {t.out - 1}), {t.out**2} of {t.out**2}: the window at rows "
    longest = position + f"{_span(t.taps(t.out - 1))}, columns {_span(t.taps(t.out - 1))} of the grid"
    width = max(width, MARGIN + text_width(longest, 12) + MARGIN)
    return Scene(width, y + 40, items, heading)


def animate(
    path: PathLike,
    layer: OneLayer,
    cap: int | None = None,
    inputs: Iterable[PathLike] = (),
    numbers: Numbers | None = None,
) -> tuple[list[Frame], Path]:
    """Write the animation of ``layer`` to ``path``: a looping ``.gif``, or a ``.png`` sheet of every frame."""
    from convcli.draw.files import check_animation, write_animation

    check_animation(path, inputs)
    shown = frames(layer, cap, numbers)
    duration = max(120, min(700, 24_000 // len(shown)))
    return shown, write_animation(path, [frame.scene for frame in shown], inputs, duration)
