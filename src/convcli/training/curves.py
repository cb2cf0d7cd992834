"""Training curves as a PNG, drawn with Pillow alone: line charts with axes, ticks, grid and legend.

`training_curves` draws ``convcli train --plot``: loss (left) and accuracy (right) per epoch, the
training part in blue with dots and the validation part in orange with squares. `loss_curve`
draws ``convcli train-filter --plot``: the MSE per step on a log scale. `write_png` saves either
atomically (`convcli.outputs.atomic_write`). Tick values follow Heckbert's "nice numbers"
(Graphics Gems, 1990): steps of 1, 2, 2.5 or 5 times a power of ten.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from convcli.errors import OutputError
from convcli.outputs import PathLike, atomic_write, check_output_path

if TYPE_CHECKING:
    from convcli.training.loop import EpochRecord

WHITE, INK, GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)
BLUE, ORANGE = (31, 119, 180), (230, 120, 20)
PANEL = (520, 380)  # width, height of one chart in pixels
MARGIN = {"left": 72, "right": 18, "top": 40, "bottom": 52}
FONT_SIZE = 14


@dataclass(frozen=True)
class Series:
    """One line: points ``(x, y)``, a ``None`` y is a gap; ``marker`` is "dot", "square" or ""."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    colour: tuple[int, int, int]
    marker: str = "dot"


def nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """About ``n`` round tick values covering [lo, hi].

    >>> nice_ticks(0.03, 0.97)
    [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
    >>> nice_ticks(1, 10, integer=True)
    [0, 2, 4, 6, 8, 10]
    """
    if hi - lo <= max(1e-9 * max(abs(lo), abs(hi)), 1e-300):  # one value: a band around it
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    if integer:
        step = max(1, round(step))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [k * step for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Powers of ten covering [lo, hi] (both positive), every k-th decade so about ``n`` remain.

    >>> log_ticks(3e-5, 0.2)
    [1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0]
    """
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    every = max(1, math.ceil((max(b, a + 1) - a) / n))
    a, b = every * math.floor(a / every), every * math.ceil(max(b, a + 1) / every)
    return [10.0**e for e in range(a, b + 1, every)]


def tick_labels(ticks: Sequence[float], log: bool = False, percent: bool = False) -> list[str]:
    """The labels of one axis, all in one format: on a linear axis the same number of decimals
    (as few as keep every tick exact), on a log axis ``10^k`` (drawn as a raised exponent).

    >>> tick_labels([0.5, 1.0, 1.5])
    ['0.5', '1.0', '1.5']
    >>> tick_labels([1e-05, 0.0001, 0.001], log=True)
    ['10^-5', '10^-4', '10^-3']
    >>> tick_labels([0.6, 0.625, 0.65], percent=True)
    ['60.0%', '62.5%', '65.0%']
    """
    if log:
        return [f"10^{round(math.log10(v))}" for v in ticks]
    values = [100 * v if percent else v for v in ticks]
    steps = [abs(b - a) for a, b in zip(values, values[1:]) if b != a]
    tol = 1e-6 * min(steps, default=max(map(abs, values), default=1.0) or 1.0)
    decimals = next((d for d in range(13) if all(abs(round(v, d) - v) <= tol for v in values)), 12)
    return [f"{round(v, decimals) + 0.0:.{decimals}f}" + "%" * percent for v in values]


def chart(
    series: Sequence[Series],
    title: str,
    x_label: str,
    y_label: str,
    *,
    log_y: bool = False,
    percent_y: bool = False,
    integer_x: bool = True,
) -> Image.Image:
    """One line chart of ``series`` as an RGB image of size `PANEL`."""
    font = ImageFont.load_default(size=FONT_SIZE)
    image = Image.new("RGB", PANEL, WHITE)
    draw = ImageDraw.Draw(image)
    left, top = MARGIN["left"], MARGIN["top"]
    right, bottom = PANEL[0] - MARGIN["right"], PANEL[1] - MARGIN["bottom"]
    xs = [x for s in series for x in s.x]
    ys = [y for s in series for y in s.y if y is not None and (y > 0 or not log_y)]
    if not xs or not ys:
        raise OutputError(f"nothing to plot in '{title}'")
    x_ticks = nice_ticks(min(xs), max(xs), 6, integer_x)
    y_ticks = log_ticks(min(ys), max(ys)) if log_y else nice_ticks(min(ys), max(ys), 5)
    ty = math.log10 if log_y else float
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], ty(y_ticks[0]), ty(y_ticks[-1])

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (ty(y) - y0) / (y1 - y0) * (bottom - top))

    for v, text in zip(y_ticks, tick_labels(y_ticks, log_y, percent_y)):
        _, y = px(x0, v)
        draw.line([(left, y), (right, y)], fill=GRID)
        _tick_label(draw, text, font, (left - 8, y - FONT_SIZE / 2 - 1), "right")
    for v, text in zip(x_ticks, tick_labels(x_ticks)):
        x, _ = px(v, y_ticks[0])
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.line([(x, bottom), (x, bottom + 5)], fill=INK)
        _tick_label(draw, text, font, (x, bottom + 8), "centre")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=INK, width=1)
    draw.text((left, 12), title, fill=INK, font=ImageFont.load_default(size=FONT_SIZE + 2))
    draw.text(((left + right - draw.textlength(x_label, font=font)) / 2, bottom + 28), x_label, fill=INK, font=font)
    _vertical_text(image, y_label, font, (14, (top + bottom) / 2))
    lines = [[px(x, y) for x, y in zip(s.x, s.y) if y is not None and (y > 0 or not log_y)] for s in series]
    for s, points in zip(series, lines):
        _line(draw, points, s)
    _legend(draw, series, font, (left, top, right, bottom), [p for points in lines for p in _along(points)])
    return image


def _tick_label(draw: ImageDraw.ImageDraw, text: str, font, at: tuple[float, float], align: str) -> None:
    """A label whose top is at ``at``, its right end or its centre on ``at``'s x; ``10^k`` is set
    as 10 with a raised exponent, as the font has no superscript digits."""
    base, _, power = text.partition("^")
    small = ImageFont.load_default(size=FONT_SIZE - 3)
    width = draw.textlength(base, font=font) + (draw.textlength(power, font=small) + 1 if power else 0)
    x = at[0] - (width if align == "right" else width / 2)
    draw.text((x, at[1]), base, fill=INK, font=font)
    if power:
        draw.text((x + draw.textlength(base, font=font) + 1, at[1] - 5), power, fill=INK, font=small)


def _line(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], s: Series) -> None:
    if len(points) > 1:
        draw.line(points, fill=s.colour, width=2, joint="curve")
    r = 3.5
    for x, y in points if s.marker else ():
        box = [(x - r, y - r), (x + r, y + r)]
        (draw.ellipse if s.marker == "dot" else draw.rectangle)(box, fill=s.colour)


def _along(points: list[tuple[float, float]], k: int = 8) -> list[tuple[float, float]]:
    """The polyline through ``points`` sampled ``k`` times per segment."""
    out = points[:1]
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        out += [(xa + (xb - xa) * t / k, ya + (yb - ya) * t / k) for t in range(1, k + 1)]
    return out


def _legend(
    draw: ImageDraw.ImageDraw,
    series: Sequence[Series],
    font,
    area: tuple[int, int, int, int],
    points: list[tuple[float, float]],
) -> None:
    """The legend box in the corner of ``area`` that covers the fewest data points."""
    shown = [s for s in series if any(y is not None for y in s.y)]
    w, h = max(draw.textlength(s.label, font=font) for s in shown) + 40, 8 + 20 * len(shown)
    left, top, right, bottom = area
    corners = [
        (right - w - 6, top + 6),
        (right - w - 6, bottom - h - 6),
        (left + 8, top + 6),
        (left + 8, bottom - h - 6),
    ]
    x, y = min(
        corners, key=lambda c: sum(c[0] - 6 <= u <= c[0] + w + 6 and c[1] - 6 <= v <= c[1] + h + 6 for u, v in points)
    )
    draw.rectangle([(x, y), (x + w, y + h)], fill=WHITE, outline=GRID)
    for k, s in enumerate(shown):
        row = y + 14 + 20 * k
        _line(draw, [(x + 8, row), (x + 28, row)], Series(s.label, (), (), s.colour, ""))
        if s.marker:
            _line(draw, [(x + 18, row)], s)
        draw.text((x + 34, row - FONT_SIZE / 2 - 1), s.label, fill=INK, font=font)


def _vertical_text(image: Image.Image, text: str, font, centre: tuple[float, float]) -> None:
    """``text`` rotated a quarter turn anticlockwise, centred on ``centre``."""
    width = int(ImageDraw.Draw(image).textlength(text, font=font)) + 4
    strip = Image.new("RGB", (width, FONT_SIZE + 6), WHITE)
    ImageDraw.Draw(strip).text((2, 1), text, fill=INK, font=font)
    strip = strip.rotate(90, expand=True)
    image.paste(strip, (int(centre[0] - strip.width / 2), int(centre[1] - strip.height / 2)))


def side_by_side(images: Sequence[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), WHITE)
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out


def training_curves(history: Sequence[EpochRecord], title: str = "") -> Image.Image:
    """Loss and accuracy per epoch (train and validation) of a ``convcli train`` history."""
    epochs = [h.epoch for h in history]

    def pair(key: str) -> list[Series]:
        return [
            Series("train", epochs, [getattr(h, f"train_{key}") for h in history], BLUE, "dot"),
            Series("validation", epochs, [getattr(h, f"val_{key}") for h in history], ORANGE, "square"),
        ]

    prefix = f"{title}: " if title else ""
    return side_by_side(
        [
            chart(pair("loss"), f"{prefix}loss", "epoch", "cross-entropy loss"),
            chart(pair("accuracy"), f"{prefix}accuracy", "epoch", "accuracy", percent_y=True),
        ]
    )


def loss_curve(mse: Sequence[float], title: str) -> Image.Image:
    """The MSE of ``convcli train-filter`` after each step (``mse[0]``: before any), on a log scale."""
    return chart([Series("MSE", range(len(mse)), list(mse), BLUE, "")], title, "step", "mean squared error", log_y=True)


def check_png(path: Path, inputs: Iterable[PathLike] = (), others: Iterable[PathLike] = ()) -> Path:
    """Refuse, before any work is done, a ``--plot`` that is not a ``.png`` name or cannot be
    written safely (see `convcli.outputs.check_output_path`)."""
    check_output_path(path, inputs, label="--plot", others=others)
    if Path(path).suffix.lower() != ".png":
        raise OutputError(f"--plot {path}: the curves are a PNG image; end the name in .png")
    return Path(path)


def write_png(path: Path, image: Image.Image, inputs: Iterable[PathLike] = ()) -> Path:
    """Save ``image`` as PNG atomically, never over one of ``inputs``; `OutputError` if the path
    cannot take it."""
    check_png(path, inputs)
    return atomic_write(path, lambda f: image.save(f, format="PNG"), inputs)
