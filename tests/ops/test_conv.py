"""conv2d, its backward and the image filters, against the nested-loop reference, scipy and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import InputError, ShapeError
from convcli.ops import conv as conv_module
from convcli.ops.conv import conv2d, conv2d_backward, conv2d_forward, conv2d_inference
from convcli.ops.filters import (
    correlate_separable,
    filter2d,
    gradient_magnitude,
    rank1_factors,
)
from convcli.shapes import resolve_padding

import reference
from gradcheck import assert_gradients_close, numerical_gradients

RNG = np.random.default_rng(2024)
SCIPY_MODES = {
    "zeros": "constant",
    "reflect": "mirror",
    "replicate": "nearest",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "reflect",
}


def pads_of(padding, h, w, fh, fw, s=(1, 1), d=(1, 1)):
    """(top, bottom, left, right) for a padding spec, through the shared shape arithmetic."""
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        ph, pw = padding
    else:
        ph = pw = padding
    return resolve_padding(ph, h, fh, s[0], d[0]) + resolve_padding(pw, w, fw, s[1], d[1])


ENGINES = list(conv_module.ENGINES)


def force_engine(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    """Make conv2d pick ``engine`` wherever it fits (`conv.engine_fits`), else ``im2col``."""

    def choose(g, w, groups=1):
        return engine if conv_module.engine_fits(engine, g, w, groups) else "im2col"

    monkeypatch.setattr(conv_module, "choose_engine", choose)


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Run the test once per conv engine."""
    force_engine(monkeypatch, request.param)
    return request.param


CASES = [  # n, c_in, c_out, h, w, fh, fw, stride, padding, dilation, groups, mode, flip
    (1, 1, 1, 6, 6, 3, 3, 1, 0, 1, 1, "zeros", False),
    (2, 3, 4, 7, 6, 3, 3, 1, 1, 1, 1, "zeros", False),
    (2, 3, 2, 7, 8, 2, 3, 1, (0, 1), 1, 1, "zeros", True),
    (1, 2, 3, 6, 7, 3, 2, 1, ((1, 0), (2, 1)), 1, 1, "zeros", False),
    (1, 2, 2, 6, 6, 4, 4, 1, "same", 1, 1, "zeros", False),
    (1, 2, 2, 5, 6, 3, 2, 1, "full", 1, 1, "zeros", True),
    (2, 2, 3, 9, 8, 3, 3, 2, "tf", 1, 1, "zeros", False),
    (1, 2, 2, 7, 7, 4, 4, 3, "tf", 1, 1, "zeros", False),
    (1, 1, 2, 8, 8, 3, 3, 1, "valid", 2, 1, "zeros", False),
    (2, 2, 2, 9, 10, 3, 2, (2, 1), 2, (2, 1), 1, "zeros", False),
    (2, 4, 4, 7, 7, 3, 3, 1, 1, 1, 2, "zeros", False),
    (2, 4, 4, 7, 7, 3, 3, 2, 1, 1, 4, "zeros", False),  # depthwise
    (1, 3, 6, 6, 6, 3, 3, 1, 1, 1, 3, "zeros", True),  # depthwise, multiplier 2
    (2, 3, 5, 5, 5, 1, 1, 1, 0, 1, 1, "zeros", False),  # pointwise
    (2, 3, 4, 8, 8, 1, 1, 2, 0, 1, 1, "zeros", False),  # strided pointwise
    (1, 2, 2, 6, 5, 3, 3, 1, 2, 1, 1, "reflect", False),
    (1, 2, 2, 6, 5, 3, 3, 2, 2, 1, 1, "replicate", False),
    (1, 2, 2, 6, 5, 3, 3, 1, 2, 1, 1, "circular", True),
    (1, 1, 1, 5, 5, 3, 3, 1, 3, 1, 1, "wrap", False),
    (1, 2, 1, 5, 6, 3, 2, 1, (1, 2), 1, 1, "symmetric", False),
    (1, 1, 1, 5, 5, 5, 5, 1, "same", 1, 1, "reflect", False),
    (1, 16, 1, 32, 32, 3, 3, 1, 1, 1, 1, "zeros", False),  # wide enough for the flat engine unforced
]


@pytest.mark.parametrize("n, c_in, c_out, h, w, fh, fw, stride, padding, dilation, groups, mode, flip", CASES)
def test_conv2d_matches_reference(n, c_in, c_out, h, w, fh, fw, stride, padding, dilation, groups, mode, flip, engine):
    x = RNG.normal(size=(n, c_in, h, w))
    k = RNG.normal(size=(c_out, c_in // groups, fh, fw))
    b = RNG.normal(size=c_out)
    s, d = np.broadcast_to(stride, 2), np.broadcast_to(dilation, 2)
    y = conv2d(x, k, b, stride=stride, padding=padding, dilation=dilation, groups=groups, mode=mode, flip=flip)
    expected = reference.conv2d(x, k, b, tuple(s), pads_of(padding, h, w, fh, fw, s, d), tuple(d), groups, mode, flip)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("act", [None, "relu", "relu6"])
@pytest.mark.parametrize(
    "n, c_in, c_out, h, w, fh, fw, stride, padding, dilation, groups, mode, flip",
    [case for case in CASES if case[11] == "zeros"],
)
def test_inference_matches_reference(
    n, c_in, c_out, h, w, fh, fw, stride, padding, dilation, groups, mode, flip, engine, act
):
    """The forward without a cache, bias and activation applied in its last pass, on every engine."""
    x = RNG.normal(size=(n, c_in, h, w)) * 3
    k = RNG.normal(size=(c_out, c_in // groups, fh, fw))
    b = RNG.normal(size=c_out)
    s, d = np.broadcast_to(stride, 2), np.broadcast_to(dilation, 2)
    k_applied = k[:, :, ::-1, ::-1] if flip else k  # the inference has no flip: pass the flipped kernel
    y = conv2d_inference(x, k_applied, b, stride=stride, padding=padding, dilation=dilation, groups=groups, act=act)
    expected = reference.conv2d(x, k, b, tuple(s), pads_of(padding, h, w, fh, fw, s, d), tuple(d), groups, mode, flip)
    expected = {None: expected, "relu": np.maximum(expected, 0), "relu6": np.clip(expected, 0, 6)}[act]
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    assert y.flags.c_contiguous


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=st.integers(1, 2),
    c_per_group=st.integers(1, 2),
    out_per_group=st.integers(1, 2),
    h=st.integers(3, 8),
    w=st.integers(3, 8),
    fh=st.integers(1, 3),
    fw=st.integers(1, 3),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    p=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    mode=st.sampled_from(list(SCIPY_MODES)),
    flip=st.booleans(),
    engine=st.sampled_from(ENGINES),
)
def test_conv2d_random_geometry_matches_reference(
    n, groups, c_per_group, out_per_group, h, w, fh, fw, s, d, p, mode, flip, engine
):
    if h + p[0] + p[1] < d[0] * (fh - 1) + 1 or w + p[2] + p[3] < d[1] * (fw - 1) + 1:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            conv2d(
                np.zeros((n, groups * c_per_group, h, w)),
                np.zeros((groups * out_per_group, c_per_group, fh, fw)),
                stride=s,
                padding=((p[0], p[1]), (p[2], p[3])),
                dilation=d,
                groups=groups,
            )
        return
    x = RNG.normal(size=(n, groups * c_per_group, h, w))
    k = RNG.normal(size=(groups * out_per_group, c_per_group, fh, fw))
    with pytest.MonkeyPatch.context() as monkeypatch:
        force_engine(monkeypatch, engine)
        y = conv2d(
            x, k, stride=s, padding=((p[0], p[1]), (p[2], p[3])), dilation=d, groups=groups, mode=mode, flip=flip
        )
    np.testing.assert_allclose(y, reference.conv2d(x, k, None, s, p, d, groups, mode, flip), atol=1e-10)


def test_engine_choice():
    def engine(x_shape, w_shape, **options):
        return conv2d_forward(np.zeros(x_shape), np.zeros(w_shape), **options)[1].engine

    assert engine((1, 16, 32, 32), (1, 16, 3, 3), padding=1) == "flat"
    assert engine((1, 16, 34, 34), (1, 16, 3, 3), stride=2) == "flat"  # any stride
    assert engine((1, 8, 34, 34), (1, 8, 3, 3), stride=2) == "im2col"  # few channels, 16-pixel rows
    assert engine((64, 16, 28, 28), (32, 16, 3, 3), stride=2, padding=1) == "flat"  # mnist-resnet
    assert engine((64, 32, 14, 14), (32, 32, 3, 3), padding=1) == "batch-last"  # a small plane
    assert engine((64, 1, 32, 32), (6, 1, 5, 5)) == "im2col"  # LeNet-5's C1
    assert engine((64, 6, 14, 14), (16, 6, 5, 5)) == "batch-last"  # LeNet-5's C3
    assert engine((64, 32, 14, 14), (64, 32, 1, 1)) == "pointwise"
    assert engine((64, 32, 28, 28), (32, 1, 3, 3), stride=2, padding="tf", groups=32) == "flat"  # depthwise
    assert engine((2, 3, 6, 6), (6, 1, 3, 3), groups=3) == "batch-last"  # depthwise, multiplier 2


@pytest.mark.parametrize("f, stride, padding, groups", [(1, 1, 0, 1), (1, 2, 0, 2), (3, 1, 1, 4), (3, 2, (0, 1), 4)])
def test_pointwise_and_depthwise_match_torch(f, stride, padding, groups):
    torch = pytest.importorskip("torch")
    x, k = RNG.normal(size=(3, 4, 9, 8)), RNG.normal(size=(4, 4 // groups, f, f))
    xt, kt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(k).requires_grad_()
    pads = (padding, padding) if isinstance(padding, int) else padding  # (lo, hi) on both axes
    yt = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, pads * 2), kt, stride=stride, groups=groups)
    y, cache = conv2d_forward(x, k, stride=stride, padding=padding, groups=groups)
    assert cache.engine == ("pointwise" if f == 1 else "flat" if groups == 4 else "im2col")
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    dy = RNG.normal(size=y.shape)
    yt.backward(torch.from_numpy(dy))
    dx, dw, _ = conv2d_backward(dy, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(dw, kt.grad.numpy(), atol=1e-11)


def test_course_vertical_edge():
    image = np.array([[10, 10, 10, 0, 0, 0]] * 6)
    vertical = np.array([[1, 0, -1]] * 3)
    np.testing.assert_array_equal(conv2d(image, vertical), [[0, 30, 30, 0]] * 4)


def test_dtypes_and_convenience_shapes():
    k = np.ones((3, 3))
    assert conv2d(np.zeros((5, 5), dtype=np.uint8), k).dtype == np.float32
    assert conv2d(np.zeros((5, 5), dtype=np.float32), k).dtype == np.float32
    assert conv2d(np.zeros((5, 5)), k.astype(np.float32)).dtype == np.float64
    assert conv2d(np.zeros((5, 5)), k).shape == (3, 3)
    assert conv2d(np.zeros((2, 5, 5)), np.ones((4, 2, 3, 3)), padding="same").shape == (4, 5, 5)
    assert conv2d(np.zeros((1, 2, 5, 5)), np.ones((4, 2, 3, 3)), stride=2).shape == (1, 4, 2, 2)


@pytest.mark.parametrize("padding, scipy_mode", [("valid", "valid"), ("same", "same"), ("full", "full")])
@pytest.mark.parametrize("flip", [False, True])
def test_matches_scipy_signal(padding, scipy_mode, flip):
    signal = pytest.importorskip("scipy.signal")
    image, k = RNG.normal(size=(9, 8)), RNG.normal(size=(3, 5))
    expected = (signal.convolve2d if flip else signal.correlate2d)(image, k, mode=scipy_mode)
    np.testing.assert_allclose(conv2d(image, k, padding=padding, flip=flip), expected, atol=1e-12)


@pytest.mark.parametrize("mode", list(SCIPY_MODES))
@pytest.mark.parametrize("shape", [(3, 3), (5, 3), (1, 5)])
def test_filters_match_scipy_ndimage_border_modes(mode, shape):
    ndimage = pytest.importorskip("scipy.ndimage")
    image, k = RNG.normal(size=(7, 9)), RNG.normal(size=shape)
    expected = ndimage.correlate(image, k, mode=SCIPY_MODES[mode])
    np.testing.assert_allclose(conv2d(image, k, padding="same", mode=mode), expected, atol=1e-12)
    np.testing.assert_allclose(filter2d(image, k, mode=mode), expected, atol=1e-12)
    separable = np.outer(RNG.normal(size=shape[0]), RNG.normal(size=shape[1]))
    np.testing.assert_allclose(
        filter2d(image, separable, mode=mode), ndimage.correlate(image, separable, mode=SCIPY_MODES[mode]), atol=1e-12
    )


def test_separable_path_matches_direct_path_on_stacks():
    images = RNG.normal(size=(2, 3, 40, 31)).astype(np.float32)
    sobel = np.outer([1, 2, 1], [1, 0, -1])
    direct = conv2d(images.reshape(6, 1, 40, 31), sobel, padding="same", mode="reflect").reshape(2, 3, 40, 31)
    np.testing.assert_allclose(filter2d(images, sobel), direct, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        correlate_separable(images, [1, 2, 1], [1, 0, -1], padding="valid"),
        direct[..., 1:-1, 1:-1],
        rtol=1e-5,
        atol=1e-5,
    )
    assert filter2d(images, sobel, flip=True).dtype == np.float32
    np.testing.assert_allclose(filter2d(images, sobel, flip=True), -filter2d(images, sobel), atol=1e-5)


@pytest.mark.parametrize("mode", list(SCIPY_MODES))
def test_strips_and_bands_on_threads_match_scipy(mode, monkeypatch):
    import convcli.ops.filters

    ndimage = pytest.importorskip("scipy.ndimage")
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    monkeypatch.setattr(convcli.ops.filters, "BAND_MIN_ROWS", 4)
    monkeypatch.setattr(convcli.ops.filters, "STRIP_BYTES", 8 * 2 * 3 * 13)  # 3-row strips of 13 columns
    image = RNG.normal(size=(2, 29, 11))  # 3 bands of 9-10 rows: strips short at each band's end
    sobel_x = np.outer([1, 2, 1], [1, 0, -1])
    sx = ndimage.correlate(image, sobel_x[None], mode=SCIPY_MODES[mode])
    sy = ndimage.correlate(image, sobel_x.T[None], mode=SCIPY_MODES[mode])
    np.testing.assert_allclose(gradient_magnitude(image, sobel_x, sobel_x.T, mode=mode), np.hypot(sx, sy), atol=1e-12)
    gauss = np.outer([1, 4, 6, 4, 1], [1, 2, 1])  # taller than wide, and wider margins
    expected = ndimage.correlate(image, gauss[None], mode=SCIPY_MODES[mode])
    np.testing.assert_allclose(filter2d(image, gauss, mode=mode), expected, atol=1e-12)


def test_gradient_magnitude_matches_scipy_sobel():
    ndimage = pytest.importorskip("scipy.ndimage")
    image = RNG.normal(size=(300, 70))  # several strips
    sobel_x = np.outer([1, 2, 1], [1, 0, -1])
    expected = np.hypot(ndimage.sobel(image, axis=1, mode="mirror"), ndimage.sobel(image, axis=0, mode="mirror"))
    np.testing.assert_allclose(gradient_magnitude(image, sobel_x, sobel_x.T), expected, atol=1e-12)
    roberts = np.array([[1, 0], [0, -1]]), np.array([[0, 1], [-1, 0]])  # not separable: the direct path
    gx, gy = (
        reference.conv2d(image[None, None, :20, :20], k[None, None], pads=(0, 1, 0, 1), mode="reflect") for k in roberts
    )
    np.testing.assert_allclose(gradient_magnitude(image[:20, :20], *roberts), np.hypot(gx, gy)[0, 0], atol=1e-12)


@pytest.mark.parametrize(
    "kernel, factored",
    [
        (np.outer([1, 2, 1], [1, 0, -1]), True),
        (np.outer([1, 0, -1], [3, 10, 3]), True),
        (np.full((3, 3), 1 / 9), True),
        (np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]), False),
        (np.zeros((3, 3)), False),
    ],
)
def test_rank1_factors(kernel, factored):
    factors = rank1_factors(kernel)
    assert (factors is not None) == factored
    if factored:
        np.testing.assert_allclose(np.outer(*factors), kernel, atol=1e-15)


TORCH_CASES = [  # stride, padding, dilation, groups, padding_mode
    (1, 1, 1, 1, "zeros"),
    (2, 0, 1, 1, "zeros"),
    (1, "same", 2, 1, "zeros"),
    ((2, 1), (1, 2), (1, 2), 2, "zeros"),
    (2, 1, 1, 4, "zeros"),
    (1, 2, 1, 1, "reflect"),
    (1, 1, 1, 2, "replicate"),
    (2, 2, 1, 1, "circular"),
]


@pytest.mark.parametrize("stride, padding, dilation, groups, padding_mode", TORCH_CASES)
def test_forward_and_backward_match_torch(stride, padding, dilation, groups, padding_mode, engine):
    torch = pytest.importorskip("torch")
    x, k, b = RNG.normal(size=(2, 4, 9, 8)), RNG.normal(size=(4, 4 // groups, 3, 3)), RNG.normal(size=4)
    layer = torch.nn.Conv2d(4, 4, 3, stride, padding, dilation, groups, padding_mode=padding_mode).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(k))
        layer.bias.copy_(torch.from_numpy(b))
    xt = torch.from_numpy(x).requires_grad_()
    yt = layer(xt)
    if isinstance(padding, tuple):  # PyTorch's (pad_h, pad_w); ours is (lo, hi) on both axes
        padding = ((padding[0],) * 2, (padding[1],) * 2)
    y = conv2d(x, k, b, stride=stride, padding=padding, dilation=dilation, groups=groups, mode=padding_mode)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    if padding_mode != "zeros":
        return
    dy = RNG.normal(size=y.shape)
    yt.backward(torch.from_numpy(dy))
    _, cache = conv2d_forward(x, k, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dx, dw, db = conv2d_backward(dy, cache)
    for ours, theirs in ((dx, xt.grad), (dw, layer.weight.grad), (db, layer.bias.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-11)


GRAD_CASES = [  # c_in, c_out, fh, fw, stride, padding, dilation, groups, flip, bias
    (2, 3, 3, 3, 1, 1, 1, 1, False, True),
    (2, 2, 2, 3, 1, (0, 1), (2, 1), 1, True, False),
    (2, 3, 3, 2, 2, 1, 1, 1, False, True),
    (4, 4, 3, 3, (1, 2), "tf", 1, 2, False, True),
    (3, 3, 3, 3, 2, 1, 2, 3, True, False),  # depthwise, dilated
    (3, 3, 3, 3, 1, "same", 1, 3, False, True),  # depthwise
    (3, 4, 1, 1, 2, 0, 1, 1, False, True),  # pointwise, strided
    (2, 4, 1, 1, 1, 1, 1, 2, True, False),  # pointwise, padded, grouped
]


@pytest.mark.parametrize("c_in, c_out, fh, fw, stride, padding, dilation, groups, flip, bias", GRAD_CASES)
def test_backward_matches_central_differences(
    c_in, c_out, fh, fw, stride, padding, dilation, groups, flip, bias, engine
):
    x = RNG.normal(size=(2, c_in, 6, 7))
    k = RNG.normal(size=(c_out, c_in // groups, fh, fw))
    b = RNG.normal(size=c_out) if bias else None
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    y, cache = conv2d_forward(x, k, b, **options)
    dy = RNG.normal(size=y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    if bias:
        numeric = numerical_gradients(lambda x_, k_, b_: conv2d(x_, k_, b_, **options), [x, k, b], dy)
        assert_gradients_close([dx, dw, db], numeric, names=["dx", "dw", "db"])
    else:
        assert db is None
        numeric = numerical_gradients(lambda x_, k_: conv2d(x_, k_, **options), [x, k], dy)
        assert_gradients_close([dx, dw], numeric, names=["dx", "dw"])


@pytest.mark.parametrize("groups", [1, 2])
def test_weight_gradient_of_a_long_batch(groups, engine):
    # 8 x 26 x 27 = 5,616 output pixels, per image and per chunk of columns as the engines sum them
    x, w = RNG.normal(size=(8, 4, 30, 31)), RNG.normal(size=(6, 4 // groups, 5, 5))
    y, cache = conv2d_forward(x, w, groups=groups)
    dy = RNG.normal(size=y.shape)
    dw = conv2d_backward(dy, cache)[1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(2, 3))  # N, C, 26, 27, 5, 5
    per_out, per_in = 6 // groups, 4 // groups
    expected = np.concatenate(
        [
            np.einsum(
                "norc,nkrcij->okij", dy[:, g * per_out : (g + 1) * per_out], windows[:, g * per_in : (g + 1) * per_in]
            )
            for g in range(groups)
        ]
    )
    np.testing.assert_allclose(dw, expected, rtol=1e-10, atol=1e-10)


def test_backward_keeps_float32(engine):
    x, k = RNG.normal(size=(2, 3, 6, 6)).astype(np.float32), RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    y, cache = conv2d_forward(x, k, np.zeros(4, np.float32), padding=1)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv2d_backward(np.ones_like(y), cache))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3))), ShapeError, "x has C_in=3"),
        (lambda: conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2), ShapeError, "groups=2 must divide"),
        (lambda: conv2d(np.zeros((1, 3, 5, 5)), np.zeros((3, 1, 3, 3)), groups=0), ShapeError, "groups=0"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((7, 3))), ShapeError, "larger than the padded input"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), stride=0), ShapeError, "stride=0"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), dilation=(1, -1)), ShapeError, "dilation"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), padding=-1), ShapeError, "negative"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), padding="half"), ShapeError, "padding='half'"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), padding=(1, 2, 3)), ShapeError, "not an int"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), stride=2, padding="same"), ShapeError, "stride 1"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), padding=1, mode="mirror"), InputError, "'reflect'"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((3, 3)), np.zeros(2)), ShapeError, "b has shape"),
        (lambda: conv2d(np.zeros(5), np.zeros((3, 3))), ShapeError, "x has shape"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((3, 3, 3))), ShapeError, "w has shape"),
        (lambda: conv2d(np.zeros((5, 5), complex), np.zeros((3, 3))), InputError, "complex"),
        (
            lambda: conv2d_forward(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=1, mode="reflect"),
            InputError,
            "only mode='zeros'",
        ),
        (lambda: conv2d_forward(np.zeros((5, 5)), np.zeros((3, 3))), ShapeError, "expected \\(N, C_in, H, W\\)"),
        (
            lambda: conv2d_backward(
                np.zeros((1, 1, 2, 2)), conv2d_forward(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)))[1]
            ),
            ShapeError,
            "dy has shape",
        ),
        (lambda: filter2d(np.zeros((5, 5)), np.zeros(3)), ShapeError, "kernel has shape"),
        (lambda: gradient_magnitude(np.zeros((5, 5)), np.zeros((3, 3)), np.zeros((2, 2))), ShapeError, "differ"),
    ],
)
def test_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_backward_without_the_input_gradient_gives_the_same_weight_gradient():
    rng = np.random.default_rng(3)
    for shape, w_shape in [((4, 1, 12, 12), (6, 1, 5, 5)), ((2, 16, 20, 20), (16, 16, 3, 3))]:
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        y, cache = conv2d_forward(x, w, np.zeros(w_shape[0], np.float32), padding=1)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx, dw, db = conv2d_backward(dy, cache)
        none, dw2, db2 = conv2d_backward(dy, cache, need_dx=False)
        assert none is None and dx.shape == x.shape
        np.testing.assert_array_equal(dw, dw2)
        np.testing.assert_array_equal(db, db2)
