"""Writing a response as an 8- or 16-bit PNG quickly: mapped, filtered and compressed in strips.

`write_levels` writes the pixels that ``convcli.images.read.write_image(path, values, scale=...,
reference=...)`` would, in a fraction of the time and memory on a large image. Once the reference
is fixed the mapping (`convcli.images.tonemap.to_display`) is elementwise, so it can run on strips of
rows that stay in cache; each strip is then PNG-filtered and fed to one zlib stream, and the
compressed bytes go straight to the file as IDAT chunks. No whole-image float64 temporary and no
whole-image byte buffer is ever made.

The encoder is PNG at its simplest (ISO/IEC 15948): greyscale or RGB, no interlace, every row
with the Sub filter (each byte minus the one a pixel to its left), zlib level 1 with run-length
matching. On a 12-megapixel edge map that is about three times faster than Pillow's encoder at its
fastest setting and seven times faster than its default, for a file about 15% larger than the
default's (benchmarks/bench_edges.py).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convcli.images.read import write_image
from convcli.images.tonemap import to_display
from convcli.outputs import PathLike, atomic_write

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2}
"""Channels -> PNG colour type: 0 is greyscale, 2 is RGB."""
STRIP_BYTES = 1 << 20
"""float64 working set of one strip: the mapping stays in cache."""


def write_levels(
    path: PathLike,
    values: np.ndarray,
    scale: str,
    reference: float | None = None,
    bit_depth: int = 8,
    inputs: Sequence[PathLike] = (),
) -> Path:
    """Write a (C, H, W) response as ``write_image`` would, fast for PNG.

    Anything but a PNG of 1 or 3 channels (16 bits: 1 channel) with scale ``abs``, ``offset``
    or ``clip`` goes to `convcli.images.read.write_image`; ``minmax`` needs the global range first.

    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = write_levels(pathlib.Path(folder) / "r.png", np.array([[[-2.0, 0.0, 1.0]]]), "offset")
    ...     np.asarray(Image.open(out)).tolist()
    [[0, 128, 191]]
    """
    path = Path(path)
    c, h, w = values.shape
    fits = c in COLOUR_TYPES and (bit_depth == 8 or (bit_depth == 16 and c == 1))
    if path.suffix.lower() != ".png" or scale not in ("abs", "offset", "clip") or not fits:
        return write_image(path, values, bit_depth=bit_depth, scale=scale, reference=reference, inputs=inputs)
    if scale != "clip" and reference is None:
        top = float(np.abs(values).max())
        reference = top if top > 0 else None

    def encode(f: BinaryIO) -> None:
        full, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.dtype(">u2"))
        pixel = c * bit_depth // 8  # bytes per pixel
        f.write(SIGNATURE)
        _chunk(f, b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, COLOUR_TYPES[c], 0, 0, 0))
        stream = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        rows = max(1, STRIP_BYTES // (8 * c * w))
        for r0 in range(0, h, rows):
            shown = to_display(values[:, r0 : r0 + rows], scale, reference)  # C, rows, W
            levels = np.rint(shown * full).transpose(1, 2, 0).astype(dtype)  # rows, W, C
            _chunk(f, b"IDAT", stream.compress(_sub_filter(levels.view(np.uint8).reshape(len(levels), -1), pixel)))
        _chunk(f, b"IDAT", stream.flush())
        _chunk(f, b"IEND", b"")

    return atomic_write(path, encode, inputs)


def _sub_filter(rows: np.ndarray, pixel: int) -> bytes:
    """Rows of bytes with PNG filter 1 (Sub): each byte minus the byte ``pixel`` places left."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 1
    out[:, 1 : pixel + 1] = rows[:, :pixel]
    np.subtract(rows[:, pixel:], rows[:, :-pixel], out=out[:, pixel + 1 :])  # wraps mod 256
    return out.tobytes()


def _chunk(f: BinaryIO, kind: bytes, data: bytes) -> None:
    if kind == b"IDAT" and not data:
        return
    f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
