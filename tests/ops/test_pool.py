"""pool2d and global pooling, forward and backward, against the nested-loop reference and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import InputError, ShapeError
from convcli.ops.pool import (
    global_pool2d,
    global_pool2d_backward,
    global_pool2d_forward,
    pool2d,
    pool2d_backward,
    pool2d_forward,
)
from convcli.shapes import resolve_padding

import reference
from gradcheck import assert_gradients_close, numerical_gradients

RNG = np.random.default_rng(7)

CASES = [  # h, w, size, stride, padding, dilation, ceil
    (4, 4, 2, None, 0, 1, False),
    (5, 5, 2, None, 0, 1, False),
    (5, 5, 2, None, 0, 1, True),
    (7, 6, 3, 2, 1, 1, False),
    (7, 6, 3, 2, 1, 1, True),
    (8, 7, (3, 2), (2, 1), (1, 0), 1, True),
    (6, 9, 2, 1, ((1, 0), (0, 1)), 1, False),
    (9, 9, 3, 2, 0, 2, False),
    (10, 8, 2, 3, 1, (2, 1), True),
    (6, 6, 3, None, "tf", 1, False),
    (7, 8, 3, 2, "tf", 1, False),
]


def pads_of(padding, h, w, size, stride):
    """(top, bottom, left, right) for a padding spec (an int, (lo, hi) on both axes, per axis, a mode)."""
    if isinstance(padding, str):
        (fh, fw), (sh, sw) = np.broadcast_to(size, 2), np.broadcast_to(stride or size, 2)
        return resolve_padding(padding, h, fh, sh) + resolve_padding(padding, w, fw, sw)
    if np.ndim(padding) == 0:
        return (padding,) * 4
    return padding[0] + padding[1] if isinstance(padding[0], tuple) else padding + padding


@pytest.mark.parametrize("mode, count_include_pad", [("max", True), ("avg", True), ("avg", False)])
@pytest.mark.parametrize("h, w, size, stride, padding, dilation, ceil", CASES)
def test_pool2d_matches_reference(h, w, size, stride, padding, dilation, ceil, mode, count_include_pad):
    x = RNG.normal(size=(2, 3, h, w))
    y = pool2d(
        x,
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil=ceil,
        mode=mode,
        count_include_pad=count_include_pad,
    )
    pair = lambda v: tuple(np.broadcast_to(v, 2))  # noqa: E731
    expected = reference.pool2d(
        x,
        pair(size),
        stride and pair(stride),
        pads_of(padding, h, w, size, stride),
        pair(dilation),
        ceil,
        mode,
        count_include_pad,
    )
    np.testing.assert_allclose(y, expected, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(2, 9),
    w=st.integers(2, 9),
    f=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    p=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    ceil=st.booleans(),
    mode=st.sampled_from(["max", "avg"]),
    include=st.booleans(),
)
def test_pool2d_random_geometry_matches_reference(h, w, f, s, d, p, ceil, mode, include):
    x = RNG.normal(size=(1, 2, h, w))
    kwargs = dict(
        stride=s, padding=((p[0], p[0]), (p[1], p[1])), dilation=d, ceil=ceil, mode=mode, count_include_pad=include
    )
    too_much_padding = 2 * p[0] > f[0] or 2 * p[1] > f[1]
    if too_much_padding or h + 2 * p[0] < d[0] * (f[0] - 1) + 1 or w + 2 * p[1] < d[1] * (f[1] - 1) + 1:
        with pytest.raises(ShapeError):
            pool2d(x, f, **kwargs)
        return
    expected = reference.pool2d(x, f, s, (p[0], p[0], p[1], p[1]), d, ceil, mode, include)
    np.testing.assert_allclose(pool2d(x, f, **kwargs), expected, rtol=1e-12)


def test_course_examples():
    x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    np.testing.assert_array_equal(pool2d(x, 2, stride=2), [[9, 2], [6, 3]])
    x_avg = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 4, 2, 3], [5, 6, 1, 2]])
    np.testing.assert_array_equal(pool2d(x_avg, 2, stride=2, mode="avg"), [[3.75, 1.25], [4, 2]])
    x5 = np.array([[1, 3, 2, 1, 3], [2, 9, 1, 1, 5], [1, 3, 2, 3, 2], [8, 3, 5, 1, 0], [5, 6, 1, 2, 9]])
    np.testing.assert_array_equal(pool2d(x5, 3, stride=1), [[9, 9, 5], [9, 9, 5], [8, 6, 9]])


def test_dtypes_and_shapes():
    assert pool2d(np.zeros((4, 4), np.uint8), 2).dtype == np.float32
    assert pool2d(np.zeros((4, 4)), 2).dtype == np.float64
    assert pool2d(np.zeros((3, 4, 4), np.float32), 2, mode="avg").shape == (3, 2, 2)
    assert global_pool2d(np.zeros((2, 3, 4, 5), np.float32)).shape == (2, 3, 1, 1)
    assert global_pool2d(np.zeros((2, 3, 4, 5), np.float32)).dtype == np.float32


TORCH_CASES = [  # size, stride, padding, ceil_mode, count_include_pad
    (2, None, 0, False, True),
    (3, 2, 1, False, True),
    (3, 2, 1, True, True),
    (3, 2, 1, True, False),
    ((3, 2), (2, 1), (1, 1), True, False),
    (2, 2, 1, True, True),
    (3, 3, 1, True, False),
    (3, 1, 1, True, True),  # stride 1: the flat path
    ((2, 3), 1, 0, False, True),
]


@pytest.mark.parametrize("size, stride, padding, ceil_mode, count_include_pad", TORCH_CASES)
def test_forward_and_backward_match_torch(size, stride, padding, ceil_mode, count_include_pad):
    torch = pytest.importorskip("torch")
    x = RNG.normal(size=(2, 3, 9, 8))
    ours_padding = padding if np.ndim(padding) == 0 else ((padding[0],) * 2, (padding[1],) * 2)
    for mode, fn in (("max", torch.nn.functional.max_pool2d), ("avg", torch.nn.functional.avg_pool2d)):
        xt = torch.from_numpy(x).requires_grad_()
        extra = {"count_include_pad": count_include_pad} if mode == "avg" else {}
        yt = fn(xt, size, stride, padding, ceil_mode=ceil_mode, **extra)
        y, cache = pool2d_forward(
            x, size, stride=stride, padding=ours_padding, ceil=ceil_mode, mode=mode, count_include_pad=count_include_pad
        )
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, err_msg=mode)
        dy = RNG.normal(size=y.shape)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(pool2d_backward(dy, cache), xt.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=mode)


def test_max_pool_backward_sends_ties_to_the_first_maximum():
    x = np.ones((1, 1, 2, 2))
    y, cache = pool2d_forward(x, 2)
    np.testing.assert_array_equal(pool2d_backward(np.ones_like(y), cache)[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize(
    "size, stride, padding, dilation, hw",
    [
        (2, None, 0, 1, (9, 8)),  # tiling windows
        (3, 1, 1, 1, (9, 8)),  # stride 1, a small plane: np.bincount backward
        (3, 1, 1, 1, (14, 13)),  # stride 1, flat forward and backward
        (3, 1, 1, 2, (15, 14)),
        (3, 2, 1, 1, (14, 13)),
        ((2, 3), 1, 0, 1, (9, 8)),
    ],
)
def test_max_pool_ties_go_to_the_first_maximum_as_in_torch(size, stride, padding, dilation, hw):
    torch = pytest.importorskip("torch")
    x = RNG.integers(0, 3, size=(3, 4, *hw)).astype(np.float32)  # many ties in every window
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, size, stride, padding, dilation=dilation, ceil_mode=True)
    y, cache = pool2d_forward(x, size, stride=stride, padding=padding, dilation=dilation, ceil=True)
    dy = RNG.normal(size=y.shape).astype(np.float32)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    # overlapping windows add their gradients in another order than torch: float32 rounding apart
    np.testing.assert_allclose(pool2d_backward(dy, cache), xt.grad.numpy(), rtol=1e-6, atol=1e-6)


GRAD_CASES = [  # size, stride, padding, dilation, ceil, mode, count_include_pad
    (2, None, 0, 1, False, "max", True),
    (3, 2, 1, 1, True, "max", True),  # overlapping, padded, partial windows
    (3, 1, 1, 2, False, "max", True),
    (2, None, 0, 1, False, "avg", True),
    (3, 2, 1, 1, True, "avg", True),
    (3, 2, 1, 1, True, "avg", False),
    ((2, 3), (1, 2), 0, 1, False, "avg", True),
]


@pytest.mark.parametrize("size, stride, padding, dilation, ceil, mode, count_include_pad", GRAD_CASES)
def test_backward_matches_central_differences(size, stride, padding, dilation, ceil, mode, count_include_pad):
    x = RNG.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0  # distinct values: no ties in max
    options = dict(
        stride=stride, padding=padding, dilation=dilation, ceil=ceil, mode=mode, count_include_pad=count_include_pad
    )
    y, cache = pool2d_forward(x, size, **options)
    dy = RNG.normal(size=y.shape)
    numeric = numerical_gradients(lambda x_: pool2d(x_, size, **options), [x], dy)
    assert_gradients_close([pool2d_backward(dy, cache)], numeric, names=["dx"])


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_global_pool(mode):
    x = RNG.permutation(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) / 7.0
    y, cache = global_pool2d_forward(x, mode)
    np.testing.assert_allclose(y[..., 0, 0], x.mean(axis=(2, 3)) if mode == "avg" else x.max(axis=(2, 3)))
    np.testing.assert_allclose(global_pool2d(x, mode), pool2d(x, (4, 5), mode=mode))
    dy = RNG.normal(size=y.shape)
    numeric = numerical_gradients(lambda x_: global_pool2d(x_, mode), [x], dy)
    assert_gradients_close([global_pool2d_backward(dy, cache)], numeric, names=["dx"])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: pool2d(np.zeros((4, 4)), 2, padding=2), ShapeError, "more than half the window"),
        (lambda: pool2d(np.zeros((4, 4)), 2, padding=((0, 2), (0, 0))), ShapeError, "more than half the window"),
        (lambda: pool2d(np.zeros((4, 4)), 5), ShapeError, "larger than the padded input"),
        (lambda: pool2d(np.zeros((4, 4)), 0), ShapeError, "size"),
        (lambda: pool2d(np.zeros((4, 4)), 2, stride=0), ShapeError, "stride"),
        (lambda: pool2d(np.zeros((4, 4)), 2, mode="mean"), InputError, "mode='mean'"),
        (lambda: pool2d(np.zeros(4), 2), ShapeError, "x has shape"),
        (lambda: pool2d_forward(np.zeros((4, 4)), 2), ShapeError, "expected \\(N, C, H, W\\)"),
        (
            lambda: pool2d_backward(np.zeros((1, 1, 3, 3)), pool2d_forward(np.zeros((1, 1, 4, 4)), 2)[1]),
            ShapeError,
            "dy has shape",
        ),
        (lambda: global_pool2d(np.zeros((4, 4))), ShapeError, "x has shape"),
        (lambda: global_pool2d(np.zeros((1, 1, 4, 4)), "sum"), InputError, "mode='sum'"),
        (
            lambda: global_pool2d_backward(np.zeros((1, 2, 1, 1)), global_pool2d_forward(np.zeros((1, 1, 4, 4)))[1]),
            ShapeError,
            "dy has shape",
        ),
    ],
)
def test_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()
