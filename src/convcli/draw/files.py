"""Which writer serves which suffix, for drawings and animations; every file written atomically.

A drawing is one :class:`~convcli.draw.scene.Scene`: ``.svg`` (text, no dependency) or ``.png``
(Pillow). An animation is a list of scenes: ``.gif`` (one frame each) or ``.png`` (a sheet of all
frames). Pillow is imported only for the raster formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from convcli.draw.scene import Scene
from convcli.errors import OutputError
from convcli.outputs import PathLike, atomic_write, check_output_path

DRAWING_SUFFIXES = (".svg", ".png")
ANIMATION_SUFFIXES = (".gif", ".png")
PNG_SCALE, GIF_SCALE, SHEET_GAP = 2.0, 1.5, 8
MAX_PIXELS = 40_000_000
"""Largest image convcli paints (a sheet of frames included), checked before it is allocated."""
MAX_GIF_PIXELS = 200_000_000
"""Largest animation: its frames are kept with one byte a pixel until the GIF is written."""


def _suffix(path: PathLike, allowed: tuple[str, ...], what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise OutputError(f"{what} {path}: write {' or '.join(allowed)}, not {suffix or 'a name without a suffix'}")
    return suffix


def check_drawing(path: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse an output the drawing cannot go to, before any work is done."""
    _suffix(path, DRAWING_SUFFIXES, "output")
    return check_output_path(path, inputs)


def check_animation(path: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    _suffix(path, ANIMATION_SUFFIXES, "--animate")
    return check_output_path(path, inputs)


def _check_pixels(pixels: float, size: str, what: str, hint: str) -> None:
    if pixels > MAX_PIXELS:
        raise OutputError(f"{what} would be {size} pixels, more than {MAX_PIXELS:,}; {hint}")


def write_drawing(path: PathLike, scene: Scene, inputs: Iterable[PathLike] = ()) -> Path:
    """``scene`` as SVG or PNG, by the suffix of ``path``."""
    if _suffix(path, DRAWING_SUFFIXES, "output") == ".svg":
        from convcli.draw.svg import to_svg

        data = to_svg(scene).encode("utf-8")

        def write_svg(f: BinaryIO) -> None:
            f.write(data)

        return atomic_write(path, write_svg, inputs)
    w, h = math.ceil(scene.width * PNG_SCALE), math.ceil(scene.height * PNG_SCALE)
    _check_pixels(w * h, f"{w} x {h}", f"output {path}", "draw it narrower (--width) or write .svg")
    from convcli.draw.raster import paint, save_png

    image = paint(scene, PNG_SCALE)
    return atomic_write(path, lambda f: save_png(image, f), inputs)


def write_animation(
    path: PathLike, frames: Sequence[Scene], inputs: Iterable[PathLike] = (), duration_ms: int = 700
) -> Path:
    """``frames`` as a looping GIF, or as a PNG sheet of all frames in a near-square grid (read
    row by row)."""
    suffix = _suffix(path, ANIMATION_SUFFIXES, "--animate")
    from convcli.draw import raster

    if suffix == ".gif":
        w, h = math.ceil(frames[0].width * GIF_SCALE), math.ceil(frames[0].height * GIF_SCALE)
        if w * h * len(frames) > MAX_GIF_PIXELS:
            raise OutputError(
                f"--animate {path}: {len(frames)} frames of {w} x {h} pixels are more than "
                f"{MAX_GIF_PIXELS:,} pixels; show fewer (--frames)"
            )
        ends = [raster.paint(frames[0], GIF_SCALE), raster.paint(frames[-1], GIF_SCALE)]
        palette = raster.shared_palette(ends)
        images = [raster.paletted(raster.paint(frame, GIF_SCALE), palette) for frame in frames]
        return atomic_write(path, lambda f: raster.save_gif(images, f, duration_ms, 3 * duration_ms), inputs)
    w, h = math.ceil(frames[0].width), math.ceil(frames[0].height)
    columns = math.ceil(math.sqrt(len(frames) * h / w))
    rows = math.ceil(len(frames) / columns)
    size = ((w + SHEET_GAP) * columns + SHEET_GAP, (h + SHEET_GAP) * rows + SHEET_GAP)
    _check_pixels(size[0] * size[1], f"{size[0]} x {size[1]}", f"--animate {path}", "show fewer frames (--frames)")
    painted = (raster.paint(frame, 1.0) for frame in frames)  # painted as pasted: one frame held at a time
    image = raster.sheet(painted, len(frames), (w, h), columns, SHEET_GAP)
    return atomic_write(path, lambda f: raster.save_png(image, f), inputs)
