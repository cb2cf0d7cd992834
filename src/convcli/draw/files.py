"""Which writer serves which suffix, for drawings and animations; every file written atomically.

A drawing is one :class:`~convcli.draw.scene.Scene`: ``.svg`` (text, no dependency) or ``.png``
(Pillow). An animation is a list of scenes: ``.gif`` (one frame each) or ``.png`` (a sheet of all
frames). Pillow is imported only for the raster formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from convcli.draw.scene import Scene
from convcli.errors import OutputError
from convcli.outputs import PathLike, atomic_write, check_output_path

DRAWING_SUFFIXES = (".svg", ".png")
ANIMATION_SUFFIXES = (".gif", ".png")
PNG_SCALE = 2.0
MAX_PIXELS = 40_000_000
"""Largest raster convcli paints (a sheet of frames included), checked before it is allocated."""


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


def _check_pixels(width: float, height: float, what: str) -> None:
    if width * height > MAX_PIXELS:
        raise OutputError(
            f"{what} would be {math.ceil(width)} x {math.ceil(height)} pixels, more than {MAX_PIXELS:,}; "
            "draw less (a smaller --width, fewer --frames) or write .svg"
        )


def write_drawing(path: PathLike, scene: Scene, inputs: Iterable[PathLike] = ()) -> Path:
    """``scene`` as SVG or PNG, by the suffix of ``path``."""
    if _suffix(path, DRAWING_SUFFIXES, "output") == ".svg":
        from convcli.draw.svg import to_svg

        data = to_svg(scene).encode("utf-8")
        return atomic_write(path, lambda f: f.write(data), inputs)
    _check_pixels(scene.width * PNG_SCALE, scene.height * PNG_SCALE, f"output {path}")
    from convcli.draw.raster import paint, save_png

    image = paint(scene, PNG_SCALE)
    return atomic_write(path, lambda f: save_png(image, f), inputs)


def write_animation(
    path: PathLike, frames: Sequence[Scene], inputs: Iterable[PathLike] = (), duration_ms: int = 700
) -> Path:
    """``frames`` as a looping GIF, or as a PNG sheet of all frames in a near-square grid."""
    suffix = _suffix(path, ANIMATION_SUFFIXES, "--animate")
    w, h = frames[0].width, frames[0].height
    columns = math.ceil(math.sqrt(len(frames) * h / w)) if suffix == ".png" else 1
    scale = 1.5 if suffix == ".gif" else 1.0
    if suffix == ".gif":
        _check_pixels(w * scale * len(frames), h * scale, f"--animate {path}")
    else:
        rows = math.ceil(len(frames) / columns)
        _check_pixels((w + 8) * columns, (h + 8) * rows, f"--animate {path}")
    from convcli.draw import raster

    images = [raster.paint(frame, scale) for frame in frames]
    if suffix == ".gif":
        return atomic_write(path, lambda f: raster.save_gif(images, f, duration_ms, 3 * duration_ms), inputs)
    image = raster.sheet(images, columns)
    return atomic_write(path, lambda f: raster.save_png(image, f), inputs)
