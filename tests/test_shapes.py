"""Shape arithmetic against brute-force counting of window positions, and against torch layers."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli.errors import ShapeError
from convcli.shapes import (
    axis,
    conv_axis,
    conv_transpose_axis,
    pool_axis,
    resolve_padding,
)

small = st.integers(1, 40)


def count_windows(n, f, s, p_lo, p_hi, d=1):
    """Window start positions whose dilated window fits inside the padded input."""
    span = d * (f - 1) + 1
    return sum(1 for start in range(0, n + p_lo + p_hi, s) if start + span <= n + p_lo + p_hi)


@given(n=small, f=st.integers(1, 7), s=st.integers(1, 5), p=st.integers(0, 4), d=st.integers(1, 3))
def test_conv_axis_counts_windows(n, f, s, p, d):
    span = d * (f - 1) + 1
    if n + 2 * p < span:
        with pytest.raises(ShapeError):
            conv_axis(n, f, s, p, d)
        return
    result = conv_axis(n, f, s, p, d)
    assert result.out == count_windows(n, f, s, p, p, d)
    last_covered = (result.out - 1) * s + span
    assert result.dropped == n + 2 * p - last_covered


@given(n=small, f=st.integers(1, 7), s=st.integers(1, 5), d=st.integers(1, 3))
def test_tf_same_gives_ceil(n, f, s, d):
    result = conv_axis(n, f, s, "tf", d)
    assert result.out == math.ceil(n / s)
    assert result.p_hi - result.p_lo in (0, 1)


@given(n=small, f=st.integers(1, 7), d=st.integers(1, 3))
def test_same_and_full(n, f, d):
    assert conv_axis(n, f, 1, "same", d).out == n
    assert conv_axis(n, f, 1, "full", d).out == n + d * (f - 1)


@given(n=small, f=st.integers(1, 6), s=st.integers(1, 5), p=st.integers(0, 3), ceil=st.booleans())
def test_pool_axis_counts_windows(n, f, s, p, ceil):
    if 2 * p > f or n + 2 * p < f:
        with pytest.raises(ShapeError):
            pool_axis(n, f, s, p, ceil=ceil)
        return
    # PyTorch's rule: windows start every s from -p. In ceil mode a last window may run past the
    # padded end if it starts inside the input (or the left padding) and the window before it
    # had not reached the padded end yet.
    starts = [t for t in range(-p, n + p, s) if t + f <= n + p or (ceil and t < n and t - s + f < n + p)]
    assert pool_axis(n, f, s, p, ceil=ceil).out == len(starts)


@given(
    n=small, f=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3), op=st.integers(0, 3)
)
def test_conv_transpose_axis_counts_positions(n, f, s, p, d, op):
    if op >= s and op >= d:
        with pytest.raises(ShapeError):
            conv_transpose_axis(n, f, s, p, d, op)
        return
    reach = max(i * s + k * d for i in range(n) for k in range(f)) + 1 + op - 2 * p
    if reach <= 0:
        with pytest.raises(ShapeError):
            conv_transpose_axis(n, f, s, p, d, op)
        return
    assert conv_transpose_axis(n, f, s, p, d, op).out == reach


def test_course_examples():
    assert axis(7, 3, 2).out == 3
    assert axis(6, 3).out == 4
    assert axis(39, 3).out == 37
    assert conv_axis(224, 11, 4).out == 54 and conv_axis(224, 11, 4).dropped == 1
    assert conv_axis(227, 11, 4).out == 55 and conv_axis(227, 11, 4).dropped == 0


def test_same_padding_puts_the_odd_pixel_last():
    assert resolve_padding("same", 10, 4) == (1, 2)
    assert resolve_padding("tf", 5, 4, 2) == (1, 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda: resolve_padding("same", 10, 3, 2),
        lambda: conv_axis(0, 3),
        lambda: conv_axis(5, 3, 0),
        lambda: pool_axis(5, 2, 2, 2),
        lambda: axis(5, 3, output_padding=1),
        lambda: axis(5, 3, ceil=True),
        lambda: axis(5, 3, pool=True, transposed=True),
        lambda: resolve_padding("bogus", 5, 3),
    ],
)
def test_invalid_settings_raise_shape_error(call):
    with pytest.raises(ShapeError):
        call()


@pytest.mark.parametrize("n,f,s,p,d", [(7, 3, 2, 0, 1), (28, 5, 1, 2, 1), (32, 3, 2, 1, 2), (9, 4, 3, 1, 1)])
def test_conv_matches_torch(n, f, s, p, d):
    torch = pytest.importorskip("torch")
    out = torch.nn.functional.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), stride=s, padding=p, dilation=d)
    assert out.shape[-1] == conv_axis(n, f, s, p, d).out


@pytest.mark.parametrize(
    "n,f,s,p,ceil",
    [(5, 2, 2, 0, True), (112, 3, 2, 0, True), (7, 3, 2, 1, True), (6, 3, 2, 1, False), (10, 4, 3, 2, True)],
)
def test_pool_matches_torch(n, f, s, p, ceil):
    torch = pytest.importorskip("torch")
    out = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), f, s, p, ceil_mode=ceil)
    assert out.shape[-1] == pool_axis(n, f, s, p, ceil=ceil).out


@pytest.mark.parametrize(
    "n,f,s,p,op,d", [(4, 2, 2, 0, 0, 1), (7, 3, 2, 1, 1, 1), (5, 3, 3, 0, 2, 1), (6, 3, 1, 1, 0, 2)]
)
def test_conv_transpose_matches_torch(n, f, s, p, op, d):
    torch = pytest.importorskip("torch")
    layer = torch.nn.ConvTranspose2d(1, 1, f, s, p, output_padding=op, dilation=d)
    assert layer(torch.zeros(1, 1, n, n)).shape[-1] == conv_transpose_axis(n, f, s, p, d, op).out


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
def test_same_padding_matches_torch():
    torch = pytest.importorskip("torch")
    for n, f, d in [(10, 4, 1), (9, 3, 2), (8, 2, 1)]:
        out = torch.nn.functional.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), padding="same", dilation=d)
        assert out.shape[-1] == conv_axis(n, f, 1, "same", d).out == n
