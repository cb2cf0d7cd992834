"""The PNG encoder (convcli.images.png): bands deflated apart make one valid zlib stream, and
every reader gets back exactly the levels written, whatever the size, depth, channels and bands."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from convcli.images import png

cv2 = pytest.importorskip("cv2")


def encoded(levels: np.ndarray, bit_depth: int, bands: int | None, strip_rows: int = 3) -> bytes:
    """``levels`` (H, W, C) as PNG bytes, handed to the encoder in strips of ``strip_rows``."""
    h, w, c = levels.shape

    def strips(r0, r1):
        return [levels[r : min(r + strip_rows, r1)] for r in range(r0, r1, strip_rows)]

    f = io.BytesIO()
    png.encode(f, strips, h, w, c, bit_depth, bands=bands)
    return f.getvalue()


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, data) of every chunk, each CRC checked."""
    assert data[:8] == png.SIGNATURE
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        found.append((kind, body))
        at += 12 + length
    return found


SHAPES = [(1, 1), (1, 7), (2, 1), (5, 3), (13, 17), (31, 8)]  # H, W: one row, one column, odd sizes


@pytest.mark.parametrize("bands", [None, 1, 2, 3, 5, 100])
@pytest.mark.parametrize("channels, bit_depth", [(1, 8), (1, 16), (3, 8)])
@pytest.mark.parametrize("h, w", SHAPES)
def test_pillow_and_opencv_read_back_the_levels(h, w, channels, bit_depth, bands):
    rng = np.random.default_rng(h * 100 + w)
    levels = rng.integers(0, 2**bit_depth, (h, w, channels))
    levels[0, 0] = 2**bit_depth - 1  # the extremes survive
    levels[-1, -1] = 0
    data = encoded(levels, bit_depth, bands)
    with Image.open(io.BytesIO(data)) as im:
        pillow = np.asarray(im)
    opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = levels[..., 0] if channels == 1 else levels
    np.testing.assert_array_equal(pillow, expected)
    np.testing.assert_array_equal(opencv, expected if channels == 1 else expected[..., ::-1])  # OpenCV: BGR
    assert opencv.dtype == (np.uint8 if bit_depth == 8 else np.uint16)


@pytest.mark.parametrize("bands", [1, 2, 4])
def test_the_idat_chunks_hold_one_zlib_stream_of_up_filtered_rows(bands):
    levels = np.random.default_rng(1).integers(0, 256, (9, 4, 1), dtype=np.uint8)
    found = chunks(encoded(levels, 8, bands, strip_rows=2))
    assert [kind for kind, _ in found[:1]] + [kind for kind, _ in found[-1:]] == [b"IHDR", b"IEND"]
    stream = b"".join(body for kind, body in found if kind == b"IDAT")
    raw = zlib.decompress(stream)  # checks the header and the combined Adler-32
    rows = np.frombuffer(raw, np.uint8).reshape(9, 5)
    assert (rows[:, 0] == png.UP).all()
    above = np.vstack([np.zeros((1, 4), np.uint8), levels[:-1, :, 0]])
    np.testing.assert_array_equal(rows[:, 1:], (levels[..., 0] - above).astype(np.uint8))


def test_strips_that_miss_rows_are_refused():
    levels = np.zeros((6, 2, 1), np.uint8)
    with pytest.raises(ValueError, match="end at row"):
        png.encode(io.BytesIO(), lambda r0, r1: [levels[r0 : max(r0 + 1, r1 - 1)]], 6, 2, 1, 8, bands=2)


@pytest.mark.parametrize("split", [0, 1, 5554, 5555, 70000])
def test_adler32_combine_matches_adler32_of_the_whole(split):
    data = np.random.default_rng(split).integers(0, 256, 70000, dtype=np.uint8).tobytes()
    a, b = data[:split], data[split:]
    assert png.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(data)
    high = b"\xff" * 5552  # the most bytes zlib sums before reducing mod 65521
    assert png.adler32_combine(zlib.adler32(high), zlib.adler32(high), len(high)) == zlib.adler32(high + high)
