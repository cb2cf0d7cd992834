"""Bilinear resampling against PyTorch's interpolate and OpenCV's resize, and the off-map rule."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.ops.resample import axis_weights, resample


@pytest.mark.parametrize("shape, out", [((7, 7), (28, 28)), ((4, 6), (32, 9)), ((14, 14), (28, 28)), ((5, 3), (2, 2))])
def test_stretch_is_torch_bilinear_without_aligned_corners(shape, out):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal(shape)
    ours = resample(a, out, (shape[0] / out[0], shape[1] / out[1]))
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(a)[None, None], size=out, mode="bilinear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_stretch_is_opencv_linear_resize():
    cv2 = pytest.importorskip("cv2")
    a = np.random.default_rng(1).random((7, 5)).astype(np.float32)
    ours = resample(a, (21, 20), (7 / 21, 5 / 20))
    np.testing.assert_allclose(ours, cv2.resize(a, (20, 21), interpolation=cv2.INTER_LINEAR), atol=1e-5)


def test_points_off_the_map_read_zero_and_a_shift_moves_the_map():
    a = np.arange(12.0).reshape(3, 4)
    # the same grid shifted by one pixel: the first row and column fall off the map
    shifted = resample(a, (3, 4), (1.0, 1.0), (-1.0, -1.0))
    np.testing.assert_array_equal(shifted[1:, 1:], a[:-1, :-1])
    assert not shifted[0].any() and not shifted[:, 0].any()
    w = axis_weights(6, 3, 1.0, -1.5)
    np.testing.assert_allclose(w.sum(axis=1), [0, 1, 1, 1, 0, 0])
