"""One image reader: an image-folder data set, ``predict``'s preparation and the image commands see
the same pixels of the same file, and refuse the same decompression bombs."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from convcli.images.read import read_image
from convcli.training.datasets import load_image_folder
from convcli.training.inference import read_gray

from conftest import failed, run


def rgba_transparent(path):
    """Black ink on a transparent background, one half-transparent pixel."""
    pixels = np.zeros((6, 5, 4), np.uint8)
    pixels[1:5, 2, 3] = 255  # an opaque black stroke
    pixels[0, 0] = (200, 0, 0, 128)
    Image.fromarray(pixels, "RGBA").save(path)
    expected = np.ones((6, 5), np.float32)
    expected[1:5, 2] = 0
    expected[0, 0] = 0.299 * 200 / 255 * (128 / 255) + (1 - 128 / 255)
    return expected


def sixteen_bit(path):
    levels = (np.arange(30).reshape(6, 5) * 2000).astype(np.uint16)
    Image.fromarray(levels).save(path)  # mode I;16
    return levels / np.float32(65535)


def palette(path):
    image = Image.new("P", (5, 6))
    image.putpalette([255, 255, 255, 0, 0, 255, 10, 200, 30] + [0] * 759)
    image.putdata([0] * 10 + [1] * 10 + [2] * 10)
    image.save(path)
    luma = [1.0, 0.114 * 255 / 255, (0.299 * 10 + 0.587 * 200 + 0.114 * 30) / 255]
    return np.repeat(np.array(luma, np.float32), 10).reshape(6, 5)


def exif_rotated(path):
    """A 6-high, 5-wide file whose EXIF orientation 6 says: turn it 90 degrees clockwise."""
    stored = np.zeros((6, 5), np.uint8)
    stored[0, 0] = 255  # top left as stored: top right once upright
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif)
    upright = np.zeros((5, 6), np.float32)
    upright[0, 5] = 1
    return upright


MAKERS = {"rgba": rgba_transparent, "16-bit": sixteen_bit, "palette": palette, "exif": exif_rotated}


@pytest.mark.parametrize("kind", MAKERS)
def test_folder_loader_and_predict_see_the_same_pixels(tmp_path, kind):
    path = tmp_path / "data" / "seven" / "a.png"
    path.parent.mkdir(parents=True)
    expected = MAKERS[kind](path)
    folder = load_image_folder(tmp_path / "data").images[0, 0]
    assert np.array_equal(folder, read_gray(path))
    assert np.array_equal(folder, read_image(path).array[0])
    assert folder.shape == expected.shape
    assert np.allclose(folder, expected, atol=1e-6)


def bomb(path, side=20000):
    """A PNG whose header claims ``side`` x ``side`` pixels; the data never comes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 8)))
    return path


def test_predict_refuses_a_decompression_bomb(tmp_path):
    model = tmp_path / "m.npz"
    small = ["8x8x1", "conv:2,f=3", "relu", "flatten", "fc:10"]
    assert run("train", *small, "--epochs", 1, "-o", model, "--json").exit_code == 0
    failed(run("predict", model, bomb(tmp_path / "big.png")), "big.png", "400,000,000 pixels", "100,000,000")


def test_train_on_a_folder_refuses_a_decompression_bomb(tmp_path):
    (tmp_path / "data" / "one").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "data" / "one" / "a.png")
    bomb(tmp_path / "data" / "two" / "b.png")
    result = run("train", "8x8x1", "flatten", "fc:2", "--data", tmp_path / "data", "--epochs", 1)
    failed(result, "b.png", "400,000,000 pixels")
