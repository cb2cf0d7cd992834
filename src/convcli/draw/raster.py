"""A :class:`~convcli.draw.scene.Scene` painted with Pillow: PNG images, GIF animations, sheets.

The text is set in DejaVu Sans when Pillow finds it (the font the scene's widths were measured
in), else in Pillow's built-in font, which is narrower: a label never outgrows the room the
layout gave it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from convcli.draw.scene import WHITE, Circle, Line, Polygon, Scene, Text

_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}


@lru_cache(maxsize=32)
def _font(size: int, bold: bool):
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def paint(scene: Scene, scale: float = 2.0, image: Image.Image | None = None) -> Image.Image:
    """``scene`` as an RGB image, ``scale`` pixels per scene unit; painted over ``image`` if given."""
    if image is None:
        size = (max(1, math.ceil(scene.width * scale)), max(1, math.ceil(scene.height * scale)))
        image = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(image)

    def pts(points):
        return [(x * scale, y * scale) for x, y in points]

    def px(width: float) -> int:
        return max(1, round(width * scale))

    for item in scene.items:
        if isinstance(item, Polygon):
            # an outline wider than 1 makes Pillow paint a mask the size of the image: stroke with lines
            points = pts(item.points)
            if item.fill:
                draw.polygon(points, fill=item.fill)
            if item.stroke:
                draw.line(points + points[:1], fill=item.stroke, width=px(item.width), joint="curve")
        elif isinstance(item, Line):
            draw.line(pts(item.points), fill=item.stroke, width=px(item.width), joint="curve")
        elif isinstance(item, Circle):
            box = [((item.cx - item.r) * scale, (item.cy - item.r) * scale)]
            box.append(((item.cx + item.r) * scale, (item.cy + item.r) * scale))
            draw.ellipse(box, fill=item.fill, outline=item.stroke, width=px(item.width))
        elif isinstance(item, Text):
            font = _font(max(1, round(item.size * scale)), item.bold)
            draw.text(
                (item.x * scale, item.y * scale), item.text, fill=item.fill, font=font, anchor=_ANCHORS[item.anchor]
            )
    return image


def save_png(image: Image.Image, f) -> None:
    image.save(f, format="PNG", optimize=False, compress_level=6)


def shared_palette(images: list[Image.Image]) -> Image.Image:
    """One palette for every frame of an animation, from frames that hold all its colours: Pillow
    would otherwise choose, and dither, each frame's colours differently."""
    w, h = images[0].size
    strip = Image.new("RGB", (w, h * len(images)))
    for k, im in enumerate(images):
        strip.paste(im, (0, k * h))
    return strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT)


def paletted(image: Image.Image, palette: Image.Image) -> Image.Image:
    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def save_gif(frames: list[Image.Image], f, duration_ms: int, last_ms: int) -> None:
    """Paletted ``frames`` as an animation that loops for ever; the last stays ``last_ms`` on screen."""
    durations = [duration_ms] * (len(frames) - 1) + [last_ms]
    frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=1)


def sheet(images: Iterable[Image.Image], count: int, size: tuple[int, int], columns: int, gap: int) -> Image.Image:
    """``count`` images of ``size`` in a grid, row by row, ``gap`` pixels apart; each is pasted
    as it comes, so only the sheet is held."""
    w, h = size
    rows = math.ceil(count / columns)
    out = Image.new("RGB", (columns * w + (columns + 1) * gap, rows * h + (rows + 1) * gap), (200, 200, 200))
    for k, im in enumerate(images):
        r, c = divmod(k, columns)
        out.paste(im, (gap + c * (w + gap), gap + r * (h + gap)))
    return out
