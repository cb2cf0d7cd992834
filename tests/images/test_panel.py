"""Labelled panels (convcli.images.panel): tiles side by side under their labels."""

import numpy as np
import pytest

from convcli.images.panel import MIN_TILE, panel, scale_labels
from convcli.images.read import read_image
from convcli.images.write import write_image


def test_tiles_side_by_side_under_their_labels():
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (120, 100)) / 255
    right = rng.integers(0, 256, (3, 120, 80)) / 255
    out = panel([left, right], ["input", "x response"], gap=6)
    assert out.shape[0] == 3 and out.dtype == np.float32
    height, width = out.shape[1:]
    assert width == 6 + 100 + 6 + 80 + 6
    top = height - 6 - 120  # tiles sit on the bottom gap, below the label strip
    np.testing.assert_allclose(out[:, top : top + 120, 6:106], np.broadcast_to(left, (3, 120, 100)), atol=1e-6)
    np.testing.assert_allclose(out[:, top : top + 120, 112:192], right, atol=1e-6)
    strip = out[:, 6:top, :]
    assert (strip[:, :, 6:106] < 0.5).any() and (strip[:, :, 112:192] < 0.5).any()  # text
    assert (out[:, :, :6] == 1).all() and (out[:, -6:, :] == 1).all()  # white margins


def test_empty_label_leaves_a_blank_strip():
    out = panel([np.zeros((100, 50))], [""], gap=4)
    top = out.shape[1] - 4 - 100
    assert (out[:, :top, :] == 1).all()


def test_small_tiles_are_enlarged_with_nearest_neighbour():
    tiny = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = panel([tiny], ["2x2"], gap=2)
    zoom = MIN_TILE // 2
    tile = out[0, -2 - 2 * zoom : -2, 2 : 2 + 2 * zoom]
    np.testing.assert_array_equal(tile, np.kron(tiny, np.ones((zoom, zoom))))


def test_panel_writes_exactly_to_8_bit_png(tmp_path):
    out = panel([np.full((100, 100), 0.5), np.eye(100)], ["grey", "eye"])
    written = read_image(write_image(tmp_path / "panel.png", out), channels="rgb")
    np.testing.assert_array_equal(written.array, out)


@pytest.mark.parametrize(
    "images, labels, match",
    [
        ([np.zeros((4, 4))], ["a", "b"], "one label per image"),
        ([], [], "one label per image"),
        ([np.full((4, 4), 1.5)], ["hot"], "'hot': values must lie in"),
        ([np.zeros((2, 4, 4))], ["two"], r"'two': expected \(H, W\)"),
    ],
)
def test_caller_mistakes(images, labels, match):
    with pytest.raises(ValueError, match=match):
        panel(images, labels)


def test_panel_of_a_large_image_stays_viewable():
    out = panel([np.zeros((3000, 4000)), np.ones((3000, 4000))], ["input", "response"])
    assert out.shape[1] < 1100 and out.shape[2] < 2 * 1400
    assert out[:, -20, 1400:2000].min() == 1  # the second tile is still all white


def test_signed_tiles_get_a_scale_bar_and_the_others_do_not():
    plain = panel([np.zeros((100, 100)), np.full((100, 100), 0.5)], ["input", "x"], gap=6)
    out = panel([np.zeros((100, 100)), np.full((100, 100), 0.5)], ["input", "x"], gap=6, references=[None, 2.0937])
    assert out.shape[1] > plain.shape[1]
    below = out[0, plain.shape[1] - 6 :, :]  # everything under the tiles
    assert (below[:, :112] == 1).all()  # nothing under the input tile
    # a row of the ramp: black at its left end, mid-grey in the middle, white at its right end
    ramp_rows = [row for row in below[:, 112:212] if row.min() < 0.05 and 0.45 < row[50] < 0.55]
    assert ramp_rows
    row = ramp_rows[len(ramp_rows) // 2]
    drawn = np.flatnonzero(row < 1)
    ramp = row[drawn[0] + 1 : drawn[-1]]  # inside the bar's outline
    assert len(ramp) >= 60 and np.all(np.diff(ramp) >= 0) and ramp[0] < 0.05 and ramp[-1] > 0.95


def test_scale_bar_labels_state_the_reference():
    assert scale_labels(2.0937) == ("-2.09", "0", "+2.09")
    assert scale_labels(1500.0) == ("-1.5e+03", "0", "+1.5e+03")


def test_a_scale_bar_needs_a_positive_reference():
    with pytest.raises(ValueError, match="positive reference or None"):
        panel([np.zeros((4, 4))], ["x"], references=[0.0])
