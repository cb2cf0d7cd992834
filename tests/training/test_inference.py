"""MNIST-style preparation of digit photos: inversion, cropping, 20x20 box, centre of mass."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from convcli.errors import InputError
from convcli.training.inference import load_digit_image, mnist_style, read_gray
from convcli.training.loop import input_padding, prepare_images


def photo(tmp_path, dark_on_light=True, size=(120, 90), mode="L"):
    """A '7' drawn off-centre, as a phone photo of paper would have it."""
    bg, ink = (235, 30) if dark_on_light else (20, 220)
    im = Image.new("L", size, bg)
    d = ImageDraw.Draw(im)
    d.line([(20, 20), (60, 20), (35, 95)], fill=ink, width=7)
    path = tmp_path / "seven.png"
    im.convert(mode).save(path)
    return path


def centre_of_mass(a):
    ys, xs = np.indices(a.shape)
    return (ys * a).sum() / a.sum(), (xs * a).sum() / a.sum()


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_mnist_style(tmp_path, dark_on_light):
    out = mnist_style(read_gray(photo(tmp_path, dark_on_light)))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.max() == pytest.approx(1, abs=0.05) and out.min() >= 0
    rows, cols = np.flatnonzero(out.max(axis=1) > 0.05), np.flatnonzero(out.max(axis=0) > 0.05)
    # the taller side fills the 20-pixel box; the background is black
    assert rows[-1] - rows[0] + 1 in (20, 21) and cols[-1] - cols[0] + 1 <= 21
    assert out[:3].max() == 0 and out[:, :3].max() == 0
    cy, cx = centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_colour_and_alpha_images(tmp_path):
    rgb = photo(tmp_path, mode="RGB")
    a = mnist_style(read_gray(rgb))
    im = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(30, 10), (30, 50)], fill=(0, 0, 0, 255), width=5)
    im.save(tmp_path / "one.png")
    one = mnist_style(read_gray(tmp_path / "one.png"))
    assert a.max() > 0.9 and one.max() > 0.9
    assert one[:, 13:15].sum() > one[:, :10].sum() + one[:, 18:].sum()  # a vertical stroke in the middle


def test_sizes_for_other_networks(tmp_path):
    path = photo(tmp_path)
    assert load_digit_image(path, (28, 28, 1)).shape == (1, 28, 28)
    assert load_digit_image(path, (32, 32, 1)).shape == (1, 28, 28)  # padded by 2 with the data
    assert load_digit_image(path, (8, 8, 1)).shape == (1, 8, 8)


def test_bad_images(tmp_path):
    Image.new("L", (20, 20), 128).save(tmp_path / "flat.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(InputError, match="no digit"):
        mnist_style(read_gray(tmp_path / "flat.png"))
    with pytest.raises(InputError, match="is not an image convcli reads"):
        read_gray(tmp_path / "text.png")
    with pytest.raises(InputError, match="no such file"):
        read_gray(tmp_path / "missing.png")


@pytest.mark.parametrize("input_shape", [(32, 32, 1), (28, 28, 1), (8, 8, 1)])
def test_predict_pads_as_training_does(tmp_path, input_shape):
    """A photo reaches the network through the padding the training data went through."""
    path = photo(tmp_path)
    field = mnist_style(read_gray(path))
    digit = load_digit_image(path, input_shape)
    prepared = prepare_images(digit[None], input_shape, 0.0, 1.0)
    assert prepared.shape == (1, 1, *input_shape[:2])
    pad = input_padding(digit.shape, input_shape)
    assert pad == {32: 2, 28: 0, 8: 0}[input_shape[0]]
    if input_shape[0] != 8:
        np.testing.assert_array_equal(prepared[0, 0], np.pad(field, pad))
