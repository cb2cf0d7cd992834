"""Labelled panels: images side by side with a label above each (``edges --all``).

:func:`panel` lays images side by side (input | x response | y response | magnitude). Each tile
gets a strip above it with its label in Pillow's default font, and thin white gaps separate the
tiles. Tiles may differ in size (a "valid" convolution shrinks the response); they are
top-aligned under their labels. Small tiles, such as a response to a typed 5x5 matrix, are
enlarged by an integer factor with nearest-neighbour sampling so that each pixel stays visible
and the label fits. A tile of signed values (mapped with ``to_display(..., "offset", ref)``) gets
a scale bar under it: a grey ramp from black to white labelled ``-ref``, ``0`` and ``+ref``
(values beyond ``ref`` are clipped to black or white).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = 255
TEXT = (40, 40, 40)
MAX_TILE = 1024
"""Tiles taller than this are shrunk (area average) so a panel of a large photo stays viewable."""
MIN_TILE = 96


def scale_labels(reference: float) -> tuple[str, str, str]:
    """What black, mid-grey and white mean on a tile mapped with ``offset`` and ``reference``.

    >>> scale_labels(2.0937)
    ('-2.09', '0', '+2.09')
    """
    return f"-{reference:.3g}", "0", f"+{reference:.3g}"


def panel(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    gap: int = 6,
    references: Sequence[float | None] | None = None,
) -> np.ndarray:
    """Lay images side by side with a label above each; return ``(3, H, W)`` float32 in [0, 1].

    The result uses the project's ``(C, H, W)`` layout, so it goes straight to
    :func:`convcli.images.write.write_image`; its values are multiples of 1/255, so an 8-bit file
    holds it exactly.

    Parameters
    ----------
    images
        Each ``(H, W)`` grey or ``(C, H, W)`` with C = 1 or 3, values in [0, 1] (map signed
        responses with :func:`convcli.images.tonemap.to_display` first).
    labels
        One short label per image; a label wider than its tile is cut with an ellipsis.
    gap
        Pixels of white between and around the tiles.
    references
        For each tile, the positive ``reference`` its signed values were mapped with (``offset``:
        ``-reference`` black, 0 mid-grey, ``+reference`` white), or None for a tile that is not
        signed. Signed tiles get a scale bar under them.

    Raises
    ------
    ValueError
        If the counts differ, a tile has another shape, or values lie outside [0, 1]: the caller
        must map its data first, so this is a programming error, not a user's.

    Examples
    --------
    >>> out = panel([np.zeros((4, 4)), np.ones((4, 6))], ["input", "response"])
    >>> out.shape[0], out.dtype.name
    (3, 'float32')
    """
    if len(images) != len(labels) or not images:
        raise ValueError(f"panel needs one label per image, got {len(images)} images and {len(labels)} labels")
    references = list(references) if references is not None else [None] * len(images)
    if len(references) != len(images) or any(r is not None and not r > 0 for r in references):
        raise ValueError(f"panel needs a positive reference or None per image, got {references}")
    tiles = [_tile(image, label) for image, label in zip(images, labels)]
    zoom = max(1, -(-MIN_TILE // max(t.height for t in tiles)))
    tiles = [t.resize((t.width * zoom, t.height * zoom), Image.Resampling.NEAREST) for t in tiles]
    tallest = max(t.height for t in tiles)
    if tallest > MAX_TILE:  # a 12-megapixel photo: four tiles side by side would be 16,000 wide
        shrink = MAX_TILE / tallest
        tiles = [
            t.resize((max(1, round(t.width * shrink)), max(1, round(t.height * shrink))), Image.Resampling.BOX)
            for t in tiles
        ]
    tile_h = max(t.height for t in tiles)
    font = ImageFont.load_default(size=int(np.clip(tile_h // 22, 12, 28)))
    assert isinstance(font, ImageFont.FreeTypeFont)  # a size always gives the FreeType font
    ascent, descent = font.getmetrics()
    strip = ascent + descent + gap
    ramp_h = max(8, strip // 2)
    bar = (gap + ramp_h + 2 + ascent + descent) if any(r is not None for r in references) else 0
    width = sum(t.width for t in tiles) + gap * (len(tiles) + 1)
    canvas = Image.new("RGB", (width, gap + strip + tile_h + bar + gap), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(canvas)
    x = gap
    for tile, label, reference in zip(tiles, labels, references):
        text = _fit(label, font, tile.width)
        text_w = draw.textlength(text, font=font)
        draw.text((x + (tile.width - text_w) / 2, gap), text, fill=TEXT, font=font)
        canvas.paste(tile, (x, gap + strip))
        if reference is not None:
            # inset so that neighbouring bars' end labels stay apart, if the tile has the room
            room = tile.width - sum(font.getlength(t) for t in scale_labels(reference)) - 2 * font.size
            inset = int(np.clip(room // 2, 0, tile.width // 10))
            _scale_bar(canvas, (x + inset, gap + strip + tile_h + gap), tile.width - 2 * inset, ramp_h, reference, font)
        x += tile.width + gap
    rgb = np.asarray(canvas, dtype=np.float32) / 255  # H, W, 3
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def _scale_bar(
    canvas: Image.Image, at: tuple[int, int], width: int, height: int, reference: float, font: ImageFont.FreeTypeFont
) -> None:
    """A black-to-white ramp ``width`` wide at ``at`` (the same rule as the tile: left end
    ``-reference``, middle 0, right end ``+reference``), its three values under it."""
    x, y = at
    levels = np.rint(np.linspace(0, 255, width)).astype(np.uint8)
    canvas.paste(Image.fromarray(np.repeat(levels[None], height, axis=0)).convert("RGB"), (x, y))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x, y, x + width - 1, y + height - 1), outline=TEXT)
    low, zero, high = scale_labels(reference)
    text_y = y + height + 2
    draw.text((x, text_y), low, fill=TEXT, font=font, anchor="la")
    draw.text((x + width / 2, text_y), zero, fill=TEXT, font=font, anchor="ma")
    draw.text((x + width, text_y), high, fill=TEXT, font=font, anchor="ra")


def _tile(image: np.ndarray, label: str) -> Image.Image:
    """One image as an 8-bit RGB Pillow image."""
    values = np.asarray(image, dtype=np.float64)
    if values.ndim == 3 and values.shape[0] in (1, 3):
        values = values.transpose(1, 2, 0)  # H, W, C
    elif values.ndim == 2:
        values = values[..., None]
    else:
        raise ValueError(
            f"panel tile {label!r}: expected (H, W) or (C, H, W) with C = 1 or 3, got shape {np.shape(image)}"
        )
    if values.size == 0 or not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
        raise ValueError(f"panel tile {label!r}: values must lie in [0, 1]; map them with to_display first")
    levels = np.rint(np.broadcast_to(values, values.shape[:2] + (3,)) * 255).astype(np.uint8)
    return Image.fromarray(levels)


def _fit(label: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    """``label``, cut with an ellipsis until it is no wider than ``width`` pixels."""
    text = label
    while text and font.getlength(text) > width:
        text = text[:-1]
        if font.getlength(text + "\u2026") <= width:
            return text + "\u2026"
    return text
