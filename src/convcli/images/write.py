"""Writing arrays to files: one table from suffix to writer.

:data:`WRITERS` says, for every suffix convcli writes, which format it is and whether the values
are written as they are (``exact``: ``.tif``, ``.npy``, ``.csv``, ``.txt``) or as 8/16-bit levels
(``.png``, ``.jpg``, ``.bmp``, ``.webp``). Every list of suffixes is derived from it and
:func:`write_image` dispatches on it; ``-`` writes a PNG to standard output.

8- and 16-bit formats need values in [0, 1], which :func:`convcli.images.tonemap.to_display`
produces from signed or unbounded responses with an explicit mapping. Once its reference is
fixed the mapping is elementwise, so it runs on strips of rows that stay in cache: a
12-megapixel response never becomes a whole-image float64 temporary, and PNG strips go straight
to the encoder in `convcli.images.png`, which asks for the strips of several bands of rows at
once, from one thread per core.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from convcli.errors import OutputError
from convcli.images import png
from convcli.images.matrix import matrix_file_text
from convcli.images.tonemap import SCALES, to_display
from convcli.outputs import PathLike, atomic_write

STDOUT = "-"
"""The output name that means standard output (as ImageMagick spells it): a PNG."""
UNNAMED_STDIN = "an image from standard input has no name to name outputs after; give -o FILE, -o DIR or -o -"
"""Why a command that names its outputs after its input needs ``-o`` for standard input."""
STRIP_BYTES = 1 << 20
"""float64 working set of one strip of the mapping: it stays in cache."""


@dataclass(frozen=True)
class Writer:
    """How files of one suffix are written.

    An ``exact`` writer is ``encode(array, integer, path)``: it checks the array and returns
    the function that writes it to an open file, so a refusal comes before any file is made.
    The others are ``encode(f, strips, (C, H, W), bit_depth)``: ``strips(r0, r1)`` gives rows
    ``r0`` to ``r1`` as ``(rows, W, C)`` strips of levels (`convcli.images.png.Strips`).
    ``depths`` maps the channel counts a level format holds to the bit depths it writes.
    """

    format: str
    encode: Callable[..., Any]
    exact: bool = False
    depths: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


def _npy(array: np.ndarray, integer: bool, path: PathLike) -> Callable[[BinaryIO], None]:
    return lambda f: np.save(f, array, allow_pickle=False)


def _tiff(array: np.ndarray, integer: bool, path: PathLike) -> Callable[[BinaryIO], None]:
    """float32, one page of mode ``F`` per channel: Pillow cannot write multi-channel float32."""
    volume = array[None] if array.ndim == 2 else array  # C, H, W
    if volume.ndim != 3 or 0 in volume.shape:
        raise OutputError(f"output {path}: expected an (H, W) or (C, H, W) array, got shape {array.shape}")
    pages = [Image.fromarray(_as_float32(plane, path)) for plane in volume]
    return lambda f: pages[0].save(f, format="TIFF", save_all=True, append_images=pages[1:])


def _text(csv: bool) -> Callable[[np.ndarray, bool, PathLike], Callable[[BinaryIO], None]]:
    def prepare(array: np.ndarray, integer: bool, path: PathLike) -> Callable[[BinaryIO], None]:
        text = matrix_file_text(array, integer, csv).encode("utf-8")

        def write(f: BinaryIO) -> None:
            f.write(text)

        return write

    return prepare


def _png(f: BinaryIO, strips: png.Strips, shape: tuple[int, int, int], bit_depth: int) -> None:
    c, h, w = shape
    png.encode(f, strips, h, w, c, bit_depth)


def _pillow(fmt: str, **options: object) -> Callable[..., None]:
    def encode(f: BinaryIO, strips: png.Strips, shape: tuple[int, int, int], bit_depth: int) -> None:
        levels = np.concatenate(list(strips(0, shape[1])))  # H, W, C
        Image.fromarray(levels[..., 0] if shape[0] == 1 else levels).save(f, format=fmt, **options)

    return encode


_EIGHT_BITS: Mapping[int, tuple[int, ...]] = {1: (8,), 3: (8,)}
WRITERS: dict[str, Writer] = {
    ".png": Writer("PNG", _png, depths=png.BIT_DEPTHS),
    ".tif": Writer("TIFF", _tiff, exact=True),
    ".tiff": Writer("TIFF", _tiff, exact=True),
    ".npy": Writer("NPY", _npy, exact=True),
    ".csv": Writer("CSV", _text(csv=True), exact=True),
    ".txt": Writer("TXT", _text(csv=False), exact=True),
    ".jpg": Writer("JPEG", _pillow("JPEG", quality=95), depths=_EIGHT_BITS),
    ".jpeg": Writer("JPEG", _pillow("JPEG", quality=95), depths=_EIGHT_BITS),
    ".bmp": Writer("BMP", _pillow("BMP"), depths=_EIGHT_BITS),
    ".webp": Writer("WEBP", _pillow("WEBP", lossless=True), depths=_EIGHT_BITS),
}
"""Suffix -> writer: the one place that says which formats convcli writes and how."""
WRITE_SUFFIXES = tuple(WRITERS)
EXACT_SUFFIXES = tuple(suffix for suffix, writer in WRITERS.items() if writer.exact)
"""Suffixes whose files keep the values as they are: no scale, any sign, any channel count (text
rounds floats to 4 decimals)."""
SIXTEEN_BIT_FORMATS = " or ".join(sorted({w.format for w in WRITERS.values() if 16 in w.depths.get(1, ())}))


def _names(suffixes: tuple[str, ...]) -> str:
    """``.tif, .npy or .csv``: suffixes for a message."""
    return " or ".join(suffixes) if len(suffixes) < 3 else ", ".join(suffixes[:-1]) + " or " + suffixes[-1]


def output_format(path: PathLike) -> Writer:
    """The writer for ``path``'s suffix (``-``: a PNG on standard output).

    >>> output_format("edges.TIF").format, output_format("-").format
    ('TIFF', 'PNG')
    """
    if str(path) == STDOUT:
        return WRITERS[".png"]
    suffix = Path(path).suffix.lower()
    if suffix not in WRITERS:
        raise OutputError(
            f"output {path}: unknown suffix {suffix or '(none)'!r}; supported: {' '.join(WRITE_SUFFIXES)} "
            "or - (standard output)"
        )
    return WRITERS[suffix]


def check_writable(path: PathLike, bit_depth: int = 8, channels: int | None = None) -> Writer:
    """The writer for ``path``, if it writes ``channels`` (when known) at ``bit_depth``.

    Called before any work, so that ``--bit-depth 16 -o x.tif`` is refused up front rather than
    ignored: a format that keeps values as they are has no bit depth to choose.

    >>> check_writable("x.tif", 16)
    Traceback (most recent call last):
    ...
    convcli.errors.OutputError: output x.tif: --bit-depth 16 is for PNG files; TIFF keeps the values as they are
    """
    writer = output_format(path)
    if writer.exact:
        if bit_depth != 8:
            raise OutputError(
                f"output {path}: --bit-depth {bit_depth} is for {SIXTEEN_BIT_FORMATS} files; "
                f"{writer.format} keeps the values as they are"
            )
        return writer
    if channels is not None and channels not in writer.depths:
        raise OutputError(
            f"output {path}: {writer.format} holds 1 or 3 channels, got {channels}; write {_names(EXACT_SUFFIXES)}"
        )
    depths = writer.depths[channels] if channels is not None else {d for ds in writer.depths.values() for d in ds}
    if bit_depth not in depths:
        held = f"{channels} channel(s)" if channels is not None else "images"
        raise OutputError(
            f"output {path}: cannot write {held} at {bit_depth} bits as {writer.format}; "
            f"16 bits is for one-channel {SIXTEEN_BIT_FORMATS}; {_names(EXACT_SUFFIXES)} keep any values"
        )
    return writer


def write_image(
    path: PathLike,
    array: np.ndarray,
    *,
    bit_depth: int = 8,
    scale: str | None = None,
    reference: float | None = None,
    integer: bool = False,
    inputs: Iterable[PathLike] = (),
) -> Path:
    """Write an array to ``path`` atomically, in the format its suffix picks (:data:`WRITERS`).

    - ``.npy``: the array exactly as given (any shape and dtype).
    - ``.tif``/``.tiff``: ``(H, W)`` or ``(C, H, W)`` as float32, values as they are (negative
      ones too), one page per channel. ``.csv``/``.txt``: a 1-D, 2-D or ``(C, H, W)`` matrix as
      text (``integer``: whole numbers without decimals). ``scale`` does not apply to these.
    - ``.png``: 1 or 3 channels at 8 bits, or 1 channel at 16 bits. ``.jpg`` (quality 95),
      ``.bmp``, ``.webp`` (lossless): 1 or 3 channels, 8 bits. ``-``: a PNG on stdout.

    For the 8/16-bit formats the values are mapped by :func:`convcli.images.tonemap.to_display`
    with ``scale`` (and ``reference``), then rounded to the nearest level. Without a scale the
    values must already lie in [0, 1]: a signed response is never clipped silently.

    Raises
    ------
    OutputError
        For an unknown suffix, a shape or bit depth the format cannot hold, values outside [0, 1]
        without a scale, or any reason :func:`convcli.outputs.atomic_write` refuses.
    """
    data = np.asarray(array)
    if output_format(path).exact:
        writer = check_writable(path, bit_depth)
        return _save(path, writer.encode(data, integer, path), inputs)
    volume = data[None] if data.ndim == 2 else data  # C, H, W
    if volume.ndim != 3 or 0 in volume.shape:
        raise OutputError(f"output {path}: expected an (H, W) or (C, H, W) image, got shape {data.shape}")
    writer = check_writable(path, bit_depth, volume.shape[0])
    volume, scale, reference = _fix_mapping(volume, scale, reference, path)

    def strips(r0: int, r1: int) -> Iterator[np.ndarray]:
        return _levels(volume, scale, reference, bit_depth, r0, r1)

    return _save(path, lambda f: writer.encode(f, strips, volume.shape, bit_depth), inputs)


def _fix_mapping(
    volume: np.ndarray, scale: str | None, reference: float | None, path: PathLike
) -> tuple[np.ndarray, str, float | None]:
    """The volume, scale and reference that map it the same on every strip as on the whole.

    The range is found only where the mapping needs it (to_display checks every strip for NaN
    anyway): with a reference or ``clip`` the data is read once, by the strips.
    """
    if scale is not None and scale not in SCALES:
        raise OutputError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    if scale == "minmax":  # the range of the whole, not of a strip
        return to_display(volume, "minmax"), "clip", None
    if scale == "clip" or (scale is not None and reference is not None):
        return volume, scale, reference
    low, high = float(volume.min()), float(volume.max())  # two passes, no whole-image temporary
    if not (np.isfinite(low) and np.isfinite(high)):
        raise OutputError(f"output {path}: cannot map NaN or infinite values to an image; write .npy or .tif")
    if scale is None:
        if low < 0 or high > 1:
            raise OutputError(
                f"output {path}: values span [{low:.4g}, {high:.4g}], outside [0, 1]; choose a scale "
                f"({', '.join(SCALES)}) or write {_names(EXACT_SUFFIXES)}"
            )
        return volume, "clip", None
    top = max(high, -low)  # abs and offset: max |x| of the whole
    return volume, scale, top if top > 0 else None


def _levels(
    volume: np.ndarray, scale: str, reference: float | None, bit_depth: int, first: int, end: int
) -> Iterator[np.ndarray]:
    """``(rows, W, C)`` strips of levels of rows ``first`` to ``end`` of a ``(C, H, W)`` volume,
    mapped by ``to_display``."""
    c, h, w = volume.shape
    top, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    rows = max(1, STRIP_BYTES // (8 * c * w))
    for r0 in range(first, end, rows):
        shown = to_display(volume[:, r0 : min(r0 + rows, end)], scale, reference)  # C, rows, W
        shown *= top
        yield np.rint(shown, out=shown).astype(dtype).transpose(1, 2, 0)


def _save(path: PathLike, encode: Callable[[BinaryIO], None], inputs: Iterable[PathLike]) -> Path:
    """Write through ``encode``: atomically to a file, or whole to standard output for ``-``."""
    if str(path) != STDOUT:
        return atomic_write(path, encode, inputs)
    buffer = io.BytesIO()  # encoded first: a failure leaves nothing half-written on stdout
    encode(buffer)
    sys.stdout.flush()
    sys.stdout.buffer.write(buffer.getvalue())
    sys.stdout.buffer.flush()
    return Path(STDOUT)


def _as_float32(plane: np.ndarray, path: PathLike) -> np.ndarray:
    if not np.issubdtype(plane.dtype, np.number) or np.iscomplexobj(plane):
        raise OutputError(f"output {path}: cannot write {plane.dtype} data as float32 TIFF")
    with np.errstate(over="ignore"):
        values = plane.astype(np.float32)
    if np.isfinite(plane).all() and not np.isfinite(values).all():
        raise OutputError(f"output {path}: values exceed the float32 range; write .npy instead")
    return values
