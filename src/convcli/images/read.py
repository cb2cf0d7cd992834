"""Reading image files into ``(C, H, W)`` float32 volumes.

Reading (:func:`read_image`) goes through Pillow and makes every choice on purpose:

- EXIF orientation is applied (Pillow does not do it on open), so a phone photo is upright.
- 8-bit data is divided by 255 and 16-bit data by 65535, through numpy: Pillow's own
  ``convert("L")`` would clip 16-bit values to 8 bits.
- Alpha is composited onto a white background by default (how viewers show a transparent image
  on a page); ``alpha="black"`` premultiplies instead and ``alpha="drop"`` ignores it.
- Colour becomes grey by the Rec.601 weights 0.299 R + 0.587 G + 0.114 B (as Pillow and OpenCV
  do); ``channels="rgb"`` keeps the three channels. A colour JPEG already stores that luma (its Y
  plane): read as grey it is decoded directly, as OpenCV's ``IMREAD_GRAYSCALE`` does, which
  matches weighting the decoded colours to within rounding except where decoding clipped a
  saturated colour to 0 or 255.
- Of an animated GIF or a multi-page TIFF, the first frame is read.
- Images above ``max_pixels`` are refused before they are decoded (decompression bombs).

Whatever the reader decided that changes the data (first frame only, alpha composited, CMYK
converted) comes back as a one-line note for the CLI to print on stderr.

This is the only code that turns an image file into numbers: the image commands, ``predict``
and image-folder data sets all call :func:`read_image`, so they see the same pixels. Writing
lives in `convcli.images.write`.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from convcli.errors import InputError
from convcli.images.choices import CHANNELS
from convcli.ops.bands import map_bands
from convcli.outputs import PathLike

DEFAULT_MAX_PIXELS = 100_000_000
STDIN = "-"
"""The input name that means standard input (as ImageMagick spells it)."""
_PLUGINS = {
    "PNG": PngImagePlugin,
    "JPEG": JpegImagePlugin,
    "BMP": BmpImagePlugin,
    "TIFF": TiffImagePlugin,
    "WEBP": WebPImagePlugin,
    "GIF": GifImagePlugin,
    "PPM": PpmImagePlugin,
}
"""Pillow's plugin for each format read, imported here: asked for a format whose plugin it has not
loaded, ``Image.open`` loads every plugin it has (about 25 ms of a command's start-up)."""
READ_FORMATS = tuple(_PLUGINS)
READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pnm")
"""The file names of those formats: what an image folder lists."""
REC601_PER_MILLE = (299, 587, 114)
"""Rec.601 luma weights in thousandths, as Pillow's ``convert("L")`` uses them."""
_ALPHA = ("white", "black", "drop")
# Pillow's decoders report corrupt data through all of these.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


@dataclass(frozen=True)
class LoadedImage:
    """An image read from a file.

    Attributes
    ----------
    array
        ``(C, H, W)`` float32: C is 1 (grey) or 3 (RGB). Integer images are scaled to [0, 1]
        (8-bit by 1/255, 16-bit by 1/65535); floating-point (mode ``F``) images keep their values.
    bit_depth
        Bits per sample in the file as read: 1, 8, 16, or 32 for floating point.
    mode
        Pillow's mode of the decoded frame before conversion (``"RGB"``, ``"I;16"``, ``"P"``...).
    format
        Pillow's format name (``"PNG"``, ``"JPEG"``...).
    notes
        One line per conversion that changed the data, for the CLI to print on stderr.
    path
        The file read.
    """

    array: np.ndarray
    bit_depth: int
    mode: str
    format: str
    notes: tuple[str, ...]
    path: Path


def read_image(
    path: PathLike | bytes,
    channels: str = "gray",
    alpha: str = "white",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Read an image file into a ``(C, H, W)`` float32 volume.

    Parameters
    ----------
    path
        A PNG, JPEG, BMP, TIFF, WebP, GIF or PPM file, or the bytes of one (standard input, read
        with :func:`stdin_bytes`; named ``-`` in the result).
    channels
        ``"gray"`` (C = 1, Rec.601 weights) or ``"rgb"`` (C = 3; a grey image is repeated).
    alpha
        Transparency: ``"white"`` composites onto white, ``"black"`` onto black (premultiplied
        colour), ``"drop"`` ignores the alpha channel.
    max_pixels
        Largest width x height accepted; larger images are refused before decoding.

    Raises
    ------
    InputError
        Naming the file: missing, a directory, empty, not a supported image, truncated or corrupt,
        above ``max_pixels``, or in a pixel mode that cannot be converted.
    """
    if channels not in CHANNELS:
        raise InputError(f"channels must be one of {', '.join(CHANNELS)}; got {channels!r}")
    if alpha not in _ALPHA:
        raise InputError(f"alpha must be one of {', '.join(_ALPHA)}; got {alpha!r}")
    if max_pixels < 1:
        raise InputError(f"max_pixels must be positive, got {max_pixels}")
    name: Path | str
    if isinstance(path, bytes):
        src, name = Path(STDIN), "standard input"
        if not path:
            raise InputError("standard input is empty; pipe an image into it")
    else:
        src = name = Path(path)
        _check_file(src)
    notes: list[str] = []
    with _pixel_limit(name, max_pixels):
        try:
            with Image.open(io.BytesIO(path) if isinstance(path, bytes) else src, formats=READ_FORMATS) as im:
                fmt = im.format or "?"
                frames = getattr(im, "n_frames", 1)
                if frames > 1:
                    notes.append(f"{name} has {frames} frames; using the first")
                mode = im.mode
                if channels == "gray" and fmt == "JPEG" and mode == "RGB":
                    # A JPEG stores Rec.601 luma (Y) beside its chroma: let libjpeg hand Y over
                    # directly, as OpenCV's IMREAD_GRAYSCALE does; 4x faster than decoding colour.
                    im.draft("L", im.size)
                volume, depth = _decode(im, name, notes)  # H, W, C
        except UnidentifiedImageError as exc:
            raise InputError(f"{name} is not an image convcli reads (PNG, JPEG, BMP, TIFF, WebP, GIF, PPM)") from exc
        except _DECODE_ERRORS as exc:
            raise InputError(f"{name}: cannot decode the image (truncated or corrupt?): {exc}") from exc
    if volume.dtype == np.uint8:
        if channels == "gray" and volume.shape[2] == 3:
            volume = _grey(volume, 255)  # straight from the bytes: no float RGB copy
        else:
            volume = _scaled(volume, 255)
    volume = _apply_alpha(volume, alpha, name, notes)
    if channels == "gray" and volume.shape[2] == 3:
        volume = _grey(volume)
    elif channels == "rgb" and volume.shape[2] == 1:
        volume = np.repeat(volume, 3, axis=2)
        notes.append(f"{name} is greyscale; repeated into 3 identical channels")
    volume = volume.reshape(volume.shape[0], volume.shape[1], -1)
    array = np.ascontiguousarray(volume.transpose(2, 0, 1), dtype=np.float32)  # C, H, W
    return LoadedImage(array, depth, mode, fmt, tuple(notes), src)


def stdin_bytes(stream: IO | None = None) -> bytes:
    """All of standard input (or ``stream``) as bytes: binary for an image, text for a matrix."""
    stream = sys.stdin if stream is None else stream
    data = getattr(stream, "buffer", stream).read()
    return data.encode("utf-8") if isinstance(data, str) else data


def is_image_data(data: bytes) -> bool:
    """Whether ``data`` holds the header of a format :func:`read_image` reads. A text matrix
    never does: every one of those headers begins with a byte that no number begins with.

    >>> png = io.BytesIO()
    >>> Image.new("L", (1, 1)).save(png, format="PNG")
    >>> is_image_data(png.getvalue()), is_image_data(b"1,2;3,4")
    (True, False)
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a size warning is read_image's to give
            Image.open(io.BytesIO(data), formats=READ_FORMATS).close()
    except UnidentifiedImageError:
        return False
    except (Image.DecompressionBombError, *_DECODE_ERRORS):  # recognised: read_image will say what is wrong
        return True
    return True


def _check_file(src: Path) -> None:
    if not os.path.exists(src):  # not Path.exists: it raises on a name longer than the OS allows
        raise InputError(f"{src}: no such file")
    if src.is_dir():
        raise InputError(f"{src} is a directory, not an image file")
    if src.stat().st_size == 0:
        raise InputError(f"{src} is empty")
    if not os.access(src, os.R_OK):
        raise InputError(f"{src}: permission denied")


@contextmanager
def _pixel_limit(src: Path | str, max_pixels: int) -> Iterator[None]:
    """Make Pillow's decompression-bomb check enforce ``max_pixels`` and report it as InputError.

    Pillow checks sizes on open and again per GIF frame and TIFF tile; it only warns between one
    and two times its limit, so the warning is raised as an error too.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than that"
        raise InputError(
            f"{src} has {size}, above the limit of {max_pixels:,} pixels that guards against "
            "decompression bombs; raise it with --max-pixels if you trust this file"
        ) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _decode(opened: ImageFile.ImageFile, src: Path | str, notes: list[str]) -> tuple[np.ndarray, int]:
    """Decode the first frame into ``(H, W, C)`` float32 and its bit depth; C may include alpha."""
    rawmode = opened.tile[0][3] if opened.tile else ""
    if opened.mode in ("LA", "RGB", "RGBA") and ";16" in str(rawmode):
        notes.append(f"{src} has 16 bits per channel with colour or alpha; Pillow reads it at 8 bits")
    orientation = opened.getexif().get(0x0112, 1)
    im: Image.Image = opened
    if orientation in range(2, 9):  # exif_transpose copies even an upright image: 9 ms on a photo
        im = ImageOps.exif_transpose(opened)
        notes.append(f"{src}: applied EXIF orientation {orientation} (rotated/flipped upright)")
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=np.float32)[..., None], 1
    if mode in ("P", "PA"):
        keep_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if keep_alpha else "RGB")
    elif mode == "CMYK":
        notes.append(f"{src} is CMYK; converted to RGB without colour management")
        im = im.convert("RGB")
    elif mode in ("YCbCr", "RGBX", "RGBa", "La"):
        im = im.convert({"RGBa": "RGBA", "La": "LA"}.get(mode, "RGB"))
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return _with_channels(np.asarray(im)), 8  # uint8: read_image scales it
    if im.mode.startswith("I;16"):
        return _with_channels(np.asarray(im).astype(np.float32) / 65535), 16
    if im.mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(
                f"{src}: 32-bit integer image with values in "
                f"[{values.min()}, {values.max()}], outside the 16-bit range; "
                "save it as 16-bit or floating point"
            )
        return _with_channels(values.astype(np.float32) / 65535), 16
    if im.mode == "F":
        values = np.asarray(im, dtype=np.float32)
        if not np.isfinite(values).all():
            raise InputError(f"{src}: floating-point image contains NaN or infinite values")
        notes.append(f"{src} is floating point; values used as stored, not scaled to [0, 1]")
        return _with_channels(values), 32
    raise InputError(f"{src}: pixel mode {mode!r} is not supported; convert it to RGB or grey")


def _grey(volume: np.ndarray, top: int = 1) -> np.ndarray:
    """Rec.601 luma of an ``(H, W, 3)`` volume divided by ``top``, as ``(H, W, 1)`` float32.

    The weights are whole per-mille numbers (299, 587, 114) and the sum is divided once by
    ``1000 * top``: weights summing to exactly 1000 make pure white exactly 1.0, never a rounding
    step above it (float32 0.299 + 0.587 + 0.114 is 1.0000001, which made ``pool --scale auto``
    take white for an out-of-range value). From bytes (``top`` 255) every step is exact but the
    last. Plane by plane: ``volume @ weights`` runs numpy's matmul loop once per pixel and takes
    ten times as long on a photo.
    """
    r, g, b = (np.float32(w) for w in REC601_PER_MILLE)
    out = volume[..., 0] * r
    out += volume[..., 1] * g
    out += volume[..., 2] * b
    out /= np.float32(1000 * top)
    return out[..., None]


def _scaled(levels: np.ndarray, top: int) -> np.ndarray:
    """``levels / top`` as float32 (each level converted, then divided), bands of rows on threads."""
    out = np.empty(levels.shape, dtype=np.float32)

    def band(first: int, end: int) -> None:
        np.divide(levels[first:end], np.float32(top), out=out[first:end])

    map_bands(band, len(levels))
    return out


def _with_channels(values: np.ndarray) -> np.ndarray:
    return values if values.ndim == 3 else values[..., None]  # H, W, C


def _apply_alpha(volume: np.ndarray, alpha: str, src: Path | str, notes: list[str]) -> np.ndarray:
    """Drop or composite the alpha channel of an ``(H, W, 2|4)`` volume."""
    if volume.shape[2] not in (2, 4):
        return volume
    colour, weight = volume[..., :-1], volume[..., -1:]
    if weight.min() >= 1:
        return colour
    if alpha == "drop":
        notes.append(f"{src} has transparent pixels; alpha ignored")
        return colour
    background = 1.0 if alpha == "white" else 0.0
    notes.append(f"{src} has transparent pixels; composited onto {alpha}")
    return colour * weight + background * (1 - weight)
