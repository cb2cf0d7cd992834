"""`prepare_digit`'s placement: the prepared digit's pixels map back onto the ink of the photo
they were made from, for the 28x28 field and for the 8x8 digits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from convcli.training.inference import load_digit_image, prepare_digit


def photo(tmp_path, size=(160, 120), box=(90, 20, 130, 95)):
    """A dark, lopsided '4'-like shape, off-centre on light paper; its bounding box is ``box``."""
    im = Image.new("L", size, 230)
    d = ImageDraw.Draw(im)
    left, top, right, bottom = box
    d.rectangle([left, top, left + 8, top + 45], fill=20)
    d.rectangle([left, top + 38, right, top + 46], fill=20)
    d.rectangle([right - 12, top, right - 4, bottom], fill=20)
    path = tmp_path / "four.png"
    im.save(path)
    return path, np.asarray(im) < 128


@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32, 1), (8, 8, 1)])
def test_prepared_ink_lands_on_the_photo_ink(tmp_path, input_shape):
    path, ink = photo(tmp_path)
    prepared = prepare_digit(path, input_shape)
    np.testing.assert_array_equal(prepared.digit, load_digit_image(path, input_shape))  # predict's pixels
    assert prepared.photo.shape == ink.shape
    digit = prepared.digit[0]
    hits = []
    for i, j in zip(*np.nonzero(digit > 0.6)):
        y, x = prepared.placement.to_photo(i + 0.5, j + 0.5)
        near = ink[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2]  # anti-aliasing blurs a pixel
        hits.append(near.any())
    assert len(hits) >= 4 and all(hits)


def test_the_ink_box_maps_to_the_digit_box(tmp_path):
    path, ink = photo(tmp_path)
    prepared = prepare_digit(path, (28, 28, 1))
    digit = prepared.digit[0] > 0.05
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    top_left = prepared.placement.to_photo(rows[0], cols[0])
    bottom_right = prepared.placement.to_photo(rows[-1] + 1, cols[-1] + 1)
    ink_rows, ink_cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    scale = prepared.placement.scale[0]  # photo pixels per field pixel: the tolerance
    assert top_left == pytest.approx((ink_rows[0], ink_cols[0]), abs=scale)
    assert bottom_right == pytest.approx((ink_rows[-1] + 1, ink_cols[-1] + 1), abs=scale)
