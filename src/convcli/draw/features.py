"""The pictures of ``convcli features``: the first layer's filters, each convolution's maps, and
Grad-CAM with saliency on the input and on the photo.

A picture is a :class:`~convcli.draw.scene.Scene` for its text, frames and legends (painted by
:func:`convcli.draw.raster.paint`, in the fonts and colours of ``convcli draw``) with raster tiles
pasted on top at places the layout computed. Signed values (weights, activations) use one
diverging map with zero at mid-grey, negative towards blue and positive towards amber, so that
brightness alone still reads as the value; a picture has one scale for all its tiles. Heat maps
(Grad-CAM, saliency) use a dark-to-bright map laid over the image in proportion to the heat, so
that where there is no heat the image shows through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from convcli.draw.raster import paint, save_png
from convcli.draw.scene import GREY, INK, Circle, Item, Scene, Text, rect, text_width
from convcli.outputs import PathLike, atomic_write

SIGNED = ((-1.0, (33, 84, 166)), (0.0, (128, 128, 128)), (1.0, (255, 206, 84)))
"""Diverging map: blue below zero, mid-grey at zero, amber above."""
HEAT = ((0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)), (0.75, (249, 142, 9)), (1.0, (252, 255, 164)))
"""Dark to bright (matplotlib's inferno at five stops), for heat maps."""
POSITIVE = (
    (0.0, (68, 1, 84)),
    (0.25, (59, 82, 139)),
    (0.5, (33, 145, 140)),
    (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
)
"""Dark to bright (matplotlib's viridis at five stops), for maps with nothing below zero (after a ReLU)."""
MARGIN, GAP = 16, 12
TITLE, BODY, SMALL = 15, 12, 10
LINE = 18
MAX_TILES = 256
"""Channels drawn in one map's grid; more are counted in the caption but not drawn."""


def colour_map(values: np.ndarray, stops=SIGNED) -> np.ndarray:
    """``values`` (already scaled to the stops' range) as uint8 RGB (..., 3), linearly between stops.

    >>> colour_map(np.array([-1.0, 0.0, 0.5]))[:, 0].tolist()
    [33, 128, 192]
    """
    xs = np.array([s for s, _ in stops])
    rgb = np.array([c for _, c in stops], np.float64)
    v = np.clip(values, xs[0], xs[-1])
    out = np.stack([np.interp(v, xs, rgb[:, k]) for k in range(3)], axis=-1)
    return np.rint(out).astype(np.uint8)


def _tile(rgb: np.ndarray, zoom: int) -> Image.Image:
    """An RGB array enlarged ``zoom`` times, each value a square of pixels."""
    return Image.fromarray(np.ascontiguousarray(rgb)).resize(
        (rgb.shape[1] * zoom, rgb.shape[0] * zoom), Image.Resampling.NEAREST
    )


@dataclass
class Picture:
    """A scene and the tiles pasted over it once painted."""

    scene: Scene
    tiles: list[tuple[int, int, Image.Image]] = field(default_factory=list)
    marks: list[Item] = field(default_factory=list)
    """Painted over the tiles (a heat map's peak, the network input's outline on the photo)."""

    def paint(self) -> Image.Image:
        image = paint(self.scene, 1.0)
        for x, y, tile in self.tiles:
            image.paste(tile, (x, y))
        return paint(Scene(self.scene.width, self.scene.height, self.marks), 1.0, image)

    def add(self, x: float, y: float, tile: Image.Image) -> None:
        self.tiles.append((round(x), round(y), tile))
        self.scene.items.append(rect(round(x) - 1, round(y) - 1, tile.width + 1, tile.height + 1, None, GREY))

    def text(self, x: float, y: float, text: str, size: float = BODY, bold: bool = False, **kw) -> None:
        self.scene.items.append(Text(x, y, text, size, bold, kw.pop("anchor", "start"), kw.pop("fill", INK)))


def write_picture(path: PathLike, picture: Picture, inputs: Sequence[PathLike] = ()) -> None:
    image = picture.paint()
    atomic_write(path, lambda f: save_png(image, f), inputs)


def _number(v: float) -> str:
    return f"{v:.3g}"


def _legend(p: Picture, x: float, y: float, low: str, mid: str, high: str, stops=SIGNED, lo: float = -1.0) -> float:
    """A colour bar with three labels under it; returns the bottom."""
    bar = colour_map(np.linspace(lo, 1.0, 160)[None].repeat(10, axis=0), stops)
    p.add(x, y, Image.fromarray(bar))
    for dx, text, anchor in ((0, low, "start"), (80, mid, "middle"), (160, high, "end")):
        p.text(x + dx, y + 24, text, SMALL, anchor=anchor, fill=GREY)
    return y + 30


def _wrap(width: float, words: str, size: float = BODY) -> list[str]:
    """``words`` cut into lines no wider than ``width`` (at spaces)."""
    lines: list[str] = []
    for word in words.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def filter_grid(word: str, filters, columns: int = 8) -> Picture:
    """The first convolution's filters as enlarged tiles in one signed scale, each with its nearest
    named kernel underneath (drawn small, in its own scale), its name and the cosine distance."""
    weights = np.stack([f.weights for f in filters])
    ref = float(np.abs(weights).max()) or 1.0
    fh, fw = weights.shape[1:]
    zoom = max(1, round(72 / max(fh, fw)))
    small = max(1, zoom // 2)
    tile_w, tile_h = fw * zoom, fh * zoom
    labels = [_kernel_label(f.nearest, (fh, fw)) for f in filters]
    cell = max(tile_w, 72, *(text_width(name, BODY) + 8 for name, _ in labels))
    columns = min(columns, len(filters))
    rows = math.ceil(len(filters) / columns)
    row_h = tile_h + 22 + fh * small + 2 * LINE + 8
    width = max(2 * MARGIN + columns * cell + (columns - 1) * GAP, 560)
    inputs = len({f.channel for f in filters})
    p = Picture(Scene(width, 0))
    kinds = f"{len(filters) // inputs} filters of {fh} x {fw}" + (f" x {inputs} input channels" if inputs > 1 else "")
    p.text(MARGIN, MARGIN + TITLE, f"First convolution: {word}, {kinds}", TITLE, True)
    y: float = MARGIN + TITLE + LINE
    note = (
        "Each filter in one colour scale for all; under it the nearest named kernel (convcli conv "
        "--list-kernels; a smaller one centred in zeros), drawn in its own scale, and the cosine distance "
        "between them: 0 when the filter is that kernel scaled. A minus sign: the kernel's negative."
    )
    for line in _wrap(width - 2 * MARGIN, note):
        p.text(MARGIN, y, line, BODY, fill=GREY)
        y += LINE
    y = _legend(p, MARGIN, y - 6, f"-{_number(ref)}", "0", f"+{_number(ref)}") + GAP
    for n, (f, (name, distance)) in enumerate(zip(filters, labels)):
        r, c = divmod(n, columns)
        y0, mid = y + r * row_h, MARGIN + c * (cell + GAP) + cell / 2
        p.add(mid - tile_w / 2, y0, _tile(colour_map(f.weights / ref), zoom))
        index = f"{f.index}" if inputs == 1 else f"{f.index}, input {f.channel}"
        p.text(mid, y0 + tile_h + 13, index, SMALL, anchor="middle", fill=GREY)
        y1 = y0 + tile_h + 20
        if f.nearest is not None:
            kernel = f.nearest.matrix
            p.add(mid - fw * small / 2, y1, _tile(colour_map(kernel / np.abs(kernel).max()), small))
        p.text(mid, y1 + fh * small + 14, name, BODY, anchor="middle", fill=INK if f.nearest else GREY)
        p.text(mid, y1 + fh * small + 14 + LINE - 3, distance, SMALL, anchor="middle", fill=GREY)
    p.scene.height = y + rows * row_h + MARGIN - 8
    return p


def _kernel_label(nearest, filter_shape: tuple[int, int]) -> tuple[str, str]:
    """The nearest kernel's name (with its size when smaller than the filter) and the distance."""
    if nearest is None:
        return "no kernel fits", ""
    size = "" if nearest.shape == filter_shape else f" ({nearest.shape[0]}x{nearest.shape[1]})"
    return f"{'-' if nearest.sign < 0 else ''}{nearest.name}{size}", f"distance {nearest.distance:.2f}"


def map_grid(m, total: int, columns: int | None = None) -> Picture:
    """One convolution's map for the image, a tile per channel, in one signed scale."""
    values = m.values[:MAX_TILES]
    c, h, w = m.values.shape
    ref = float(np.abs(m.values).max()) or 1.0
    zoom = max(1, math.ceil(56 / max(h, w)))
    tile_w, tile_h = w * zoom, h * zoom
    columns = columns or min(len(values), 16 if len(values) > 32 else 8)
    rows = math.ceil(len(values) / columns)
    cell = max(tile_w, 24)
    width = max(2 * MARGIN + columns * cell + (columns - 1) * 6, 560)
    signed = bool((m.values < 0).any())
    p = Picture(Scene(width, 0))
    words = ", ".join((m.word, *m.folded))
    p.text(MARGIN, MARGIN + TITLE, f"Convolution {m.number} of {total}: {words}", TITLE, True)
    y: float = MARGIN + TITLE + LINE
    shape = " x ".join(map(str, m.shape))
    where = f" in {' > '.join(m.within)}" if m.within else ""
    stats = f"{shape}{where}; checkpoint weights {m.path}.w; mean {_number(m.mean)}"
    if m.dead is not None:
        stats += f", {m.dead:.0%} of units zero after {m.folded[-1]}, {m.dead_channels} of {c} channels all zero"
    if c > len(values):
        stats += f"; the first {len(values)} channels drawn"
    for line in _wrap(width - 2 * MARGIN, stats):
        p.text(MARGIN, y, line, BODY, fill=GREY)
        y += LINE
    if signed:
        y = _legend(p, MARGIN, y - 6, f"-{_number(ref)}", "0", f"+{_number(ref)}") + GAP
    else:
        y = _legend(p, MARGIN, y - 6, "0", _number(ref / 2), _number(ref), POSITIVE, 0.0) + GAP
    for k, plane in enumerate(values):
        r, col = divmod(k, columns)
        x0, y0 = MARGIN + col * (cell + 6), y + r * (tile_h + LINE)
        p.add(x0 + (cell - tile_w) / 2, y0, _tile(colour_map(plane / ref, SIGNED if signed else POSITIVE), zoom))
        p.text(x0 + cell / 2, y0 + tile_h + 12, str(k + 1), SMALL, anchor="middle", fill=GREY)
    p.scene.height = y + rows * (tile_h + LINE) + MARGIN - 4
    return p


def _grey_rgb(gray: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(gray, 0, 1) * 255).astype(np.uint8)[..., None].repeat(3, axis=-1)


def overlay(gray_rgb: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """``heat`` in [0, 1] laid over an RGB image, nearly opaque where the heat is 1 and clear where
    it is 0; its colours start past the map's black, which would read as a shadow on paper."""
    heat = np.clip(heat, 0, 1)
    alpha = heat[..., None] ** 0.7 * 0.75
    mixed = gray_rgb * (1 - alpha) + colour_map(0.3 + 0.7 * heat, HEAT) * alpha
    return np.rint(mixed).astype(np.uint8)


def _normalised(a: np.ndarray) -> np.ndarray:
    top = float(a.max())
    return a / top if top > 0 else np.zeros_like(a)


PANEL = 196
PHOTO, PHOTO_ZOOM = 420, 4
"""Panels of the input are about ``PANEL`` pixels wide; the photo is drawn ``PHOTO`` pixels on its
longer side, enlarged at most ``PHOTO_ZOOM`` times."""
PEAK, FOOTPRINT = "#00d5ff", "#00a0c0"
"""The ring around the heat map's peak and the outline of the input on the photo: cyans, which
the heat colours never reach."""


def gradcam_picture(result) -> Picture:
    """Grad-CAM and saliency for one class on the network's input, and Grad-CAM on the photo."""
    ex = result.explanation
    names, probs = result.class_names, result.probabilities
    h, w = ex.heat.shape
    zoom = max(1, PANEL // max(h, w))
    panel_w, panel_h = w * zoom, h * zoom
    ph, pw = result.photo.shape
    fit = min(PHOTO_ZOOM, PHOTO / max(ph, pw))
    shape = (max(1, round(ph * fit)), max(1, round(pw * fit)))
    width = max(2 * MARGIN + 3 * panel_w + 2 * GAP, 2 * MARGIN + shape[1], 640)
    p = Picture(Scene(width, 0))
    k, best = ex.target, result.predicted
    title = f"Predicted {names[best]} (p = {probs[best]:.3f}); Grad-CAM and saliency for class {names[k]}"
    if k != best:
        title += f" (p = {probs[k]:.3f})"
    p.text(MARGIN, MARGIN + TITLE, title, TITLE, True)
    y: float = MARGIN + TITLE + LINE
    note = (
        f"Grad-CAM at the last convolution's map ({', '.join(ex.words)}), placed on the input by its "
        "receptive fields; saliency: the size of the gradient of the class's score with respect to each "
        "input pixel. Each map is scaled to its own maximum."
    )
    for line in _wrap(width - 2 * MARGIN, note):
        p.text(MARGIN, y, line, BODY, fill=GREY)
        y += LINE
    y = _legend(p, MARGIN, y - 6, "0", "", "maximum", HEAT, 0.0) + GAP + LINE
    x_in = result.input_image
    panels = [
        ("input, as predict prepares it", _grey_rgb(_normalised(x_in))),
        (
            "Grad-CAM on the input" if ex.peak else "Grad-CAM: all zero",  # the longer text ran into the next
            overlay(_grey_rgb(_normalised(x_in)), _normalised(ex.heat)),
        ),
        ("saliency on the input", overlay(_grey_rgb(_normalised(x_in)) // 2, _normalised(ex.saliency))),
    ]
    for n, (label, rgb) in enumerate(panels):
        x0 = MARGIN + n * (panel_w + GAP)
        p.text(x0, y - 6, label, BODY)
        p.add(x0, y, _tile(rgb, zoom))
    if ex.peak is not None:
        i, j = ex.peak
        cx, cy = MARGIN + panel_w + GAP + (j + 0.5) * zoom, y + (i + 0.5) * zoom
        p.marks.append(Circle(cx, cy, max(4, zoom * 0.8), None, PEAK, 2))
    y += panel_h + GAP + LINE
    caption = f"Grad-CAM on the photo, through predict's crop and resize; the frame: the network's {h} x {w} input"
    zero = "Grad-CAM is zero everywhere: nothing in the map raises the class's score"
    p.text(MARGIN, y - 6, caption if ex.peak else zero, BODY)
    photo = np.asarray(
        Image.fromarray(_grey_rgb(result.photo)[..., 0]).resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
    )
    heat = result.heat_on_photo(shape)
    top = float(ex.heat.max())
    p.add(MARGIN, y, Image.fromarray(overlay(photo[..., None].repeat(3, axis=-1), heat / top if top > 0 else heat)))
    (top_y, left_x), (bottom_y, right_x) = (result.placement.to_photo(0, 0), result.placement.to_photo(h, w))
    box = [
        np.clip(v * fit, 0, limit)
        for v, limit in ((left_x, shape[1]), (top_y, shape[0]), (right_x, shape[1]), (bottom_y, shape[0]))
    ]
    p.marks.append(rect(MARGIN + box[0], y + box[1], box[2] - box[0], box[3] - box[1], None, FOOTPRINT, width=1))
    if result.peak_photo is not None:
        px, py = result.peak_photo
        cx, cy = MARGIN + (px + 0.5) * fit, y + (py + 0.5) * fit
        p.marks.append(Circle(cx, cy, 8, None, PEAK, 2))
    p.scene.height = y + shape[0] + MARGIN
    return p
