"""The named-kernel registry: what each kernel does to an image, not just what it contains."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convcli.errors import InputError
from convcli.images.kernels import KERNELS, get_kernel
from convcli.ops.conv import conv2d
from convcli.ops.filters import filter2d

REQUIRED = [
    "vertical",
    "horizontal",
    "sobel-x",
    "sobel-y",
    "scharr-x",
    "scharr-y",
    "prewitt-x",
    "prewitt-y",
    "roberts-x",
    "roberts-y",
    "laplacian",
    "laplacian-8",
    "box",
    "gaussian",
    "sharpen",
]
X_KERNELS = ["vertical", "sobel-x", "scharr-x", "prewitt-x"]
STEP = np.where(np.arange(8) < 4, 10.0, 0.0)[None, :].repeat(7, axis=0)  # bright left half, dark right half


def test_registry_holds_the_required_kernels():
    assert set(REQUIRED) <= set(KERNELS)
    for name, k in KERNELS.items():
        assert k.name == name and k.description and k.sign and k.source
        assert k.array().shape == k.shape


@pytest.mark.parametrize("name", list(KERNELS))
def test_zeros_in_zeros_out(name):
    np.testing.assert_array_equal(filter2d(np.zeros((6, 7)), get_kernel(name).array()), 0)


@pytest.mark.parametrize("name", list(KERNELS))
def test_flat_image_gives_the_kernel_sum(name):
    k = get_kernel(name)
    expected = {"edge": 0, "laplacian": 0, "smooth": 5, "sharpen": 5}[k.kind]
    np.testing.assert_allclose(filter2d(np.full((6, 7), 5.0), k.array()), expected, atol=1e-12)


@pytest.mark.parametrize("name", X_KERNELS)
def test_x_kernels_respond_positive_exactly_at_the_edge(name):
    k = get_kernel(name).array()
    response = conv2d(STEP, k)  # valid: output column c sees input columns c..c+2
    edge_columns = [2, 3]  # the windows that straddle columns 3 | 4
    assert (response[:, edge_columns] > 0).all()
    np.testing.assert_array_equal(np.delete(response, edge_columns, axis=1), 0)
    np.testing.assert_array_equal(
        conv2d(STEP.T, get_kernel(get_kernel(name).partner).array()), response.T
    )  # the y partner on the transposed image


def test_roberts_signs_follow_their_description():
    x, y = get_kernel("roberts-x").array(), get_kernel("roberts-y").array()
    top_left_bright = np.array([[10.0, 10.0], [10.0, 0.0]])
    top_right_bright = top_left_bright[:, ::-1]
    assert conv2d(top_left_bright, x)[0, 0] > 0 and conv2d(top_left_bright, y)[0, 0] == 0
    assert conv2d(top_right_bright, y)[0, 0] > 0 and conv2d(top_right_bright, x)[0, 0] == 0


def test_laplacians_are_negative_on_a_bright_dot():
    dot = np.zeros((5, 5))
    dot[2, 2] = 1
    for name in ("laplacian", "laplacian-8"):
        response = filter2d(dot, get_kernel(name).array(), mode="zeros")
        assert response[2, 2] < 0 and response.sum() == 0


@pytest.mark.parametrize("name", [n for n, k in KERNELS.items() if k.factors])
def test_factors_multiply_back_to_the_matrix(name):
    k = get_kernel(name)
    col, row = k.factors
    np.testing.assert_allclose(np.outer(col, row), k.array(), rtol=1e-15)


def test_pairs_are_partners_and_transposes():
    for name, k in KERNELS.items():
        if k.partner:
            assert get_kernel(k.partner).partner == name
            if not name.startswith("roberts"):
                np.testing.assert_array_equal(get_kernel(k.partner).array(), k.array().T)


@pytest.mark.parametrize("name", [n for n, k in KERNELS.items() if k.kind in ("smooth", "sharpen")])
def test_smoothing_and_sharpening_sum_to_one(name):
    assert get_kernel(name).array().sum() == pytest.approx(1, abs=1e-15)
    assert (get_kernel(name).array() >= 0).all() or get_kernel(name).kind == "sharpen"


def test_sign_is_opposite_to_opencv_sobel():
    cv2 = pytest.importorskip("cv2")
    image = np.random.default_rng(3).random((12, 15))
    ours = filter2d(image, get_kernel("sobel-x").array(), mode="reflect")
    np.testing.assert_allclose(ours, -cv2.Sobel(image, cv2.CV_64F, 1, 0, borderType=cv2.BORDER_REFLECT_101), atol=1e-12)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(InputError, match="did you mean 'sobel-x'"):
        get_kernel("sobelx")
    with pytest.raises(InputError, match="known: vertical, horizontal"):
        get_kernel("zzz")


def test_registry_imports_without_numpy():
    code = "import sys, convcli.images.kernels; assert 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
