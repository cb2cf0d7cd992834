"""The checks of window sizes and paddings: what callers outside the type checker pass (lists,
numpy ints and arrays, ints of any size) reads as the typed forms do, and anything else is a
ShapeError naming the value."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convcli.errors import ShapeError
from convcli.ops.choices import BORDER_MODES
from convcli.ops.windows import int_pair, pad2d, split_padding, strip_padder


@pytest.mark.parametrize(
    "value, expected",
    [
        (2, (2, 2)),
        ((2, 3), (2, 3)),
        ([2, 3], (2, 3)),
        (np.int64(2), (2, 2)),
        (np.array(2), (2, 2)),
        (np.array([2, 3]), (2, 3)),
        (True, (1, 1)),
        (2**70, (2**70, 2**70)),
    ],
)
def test_int_pair_reads_ints_and_pairs_of_any_kind(value, expected):
    pair = int_pair(value, "stride")
    assert pair == expected
    assert all(type(v) is int for v in pair)


@pytest.mark.parametrize(
    "value, message",
    [
        ((1, 2, 3), "stride=(1, 2, 3) is not an int or a pair of ints"),
        (2.0, "stride=2.0 is not an int"),
        ("ab", "stride='ab' is not an int"),
        (((1, 2), 3), "stride=((1, 2), 3) is not an int"),
        ([[1], [2]], "stride=[[1], [2]] is not an int"),
        (None, "stride=None is not an int"),
        ((2, 0), "stride=(2, 0) must be positive"),
    ],
)
def test_int_pair_refuses_anything_else(value, message):
    with pytest.raises(ShapeError, match=re.escape(message)):
        int_pair(value, "stride")


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, (1, 1)),
        ("same", ("same", "same")),
        ((0, 1), ((0, 1), (0, 1))),
        ([0, 1], ((0, 1), (0, 1))),
        (np.array([0, 1]), ((0, 1), (0, 1))),
        (((1, 2), (3, 4)), ((1, 2), (3, 4))),
        ([[1, 2], [3, 4]], ((1, 2), (3, 4))),
        (np.array([[1, 2], [3, 4]]), ((1, 2), (3, 4))),
        (np.array(2), (2, 2)),
        (2**70, (2**70, 2**70)),
        (-1, (-1, -1)),  # the sign is resolve_padding's to refuse, with its message
    ],
)
def test_split_padding_reads_every_form(value, expected):
    assert split_padding(value) == expected


@pytest.mark.parametrize("value", [(1, 2, 3), (1, 2.0), ((1, 2), 3), ((1, 2), (3, 4, 5)), ((1,), (2,)), 1.5, None])
def test_split_padding_refuses_anything_else(value):
    with pytest.raises(ShapeError, match="is not an int, a mode, a"):
        split_padding(value)


@pytest.mark.parametrize("mode", list(BORDER_MODES))
@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (5, 4), (9, 7)])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 1, 1, 2), (3, 4, 0, 2)])
def test_padded_strips_are_the_rows_of_the_padded_image(mode, h, w, pads):
    x = np.random.default_rng(h * w).normal(size=(2, h, w))
    try:
        whole = pad2d(x, pads, mode)
    except ValueError:  # numpy cannot pad this way (reflect of one row); nor can a strip
        return
    height = whole.shape[-2]
    fill = strip_padder(x, pads, mode)
    for rows in {1, 2, 3, height}:
        for first in range(0, height, rows):
            end = min(height, first + rows)
            out = np.full((2, rows, whole.shape[-1]), np.nan)
            np.testing.assert_array_equal(fill(first, end, out), whole[..., first:end, :])
