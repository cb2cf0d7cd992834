"""Value mappings (convcli.images.tonemap): every scale, constant images, errors, range and order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convcli.errors import OutputError
from convcli.images.tonemap import to_display

# to_display: explicit mappings to [0, 1].

SIGNED = np.array([-4.0, 2.0, 0.0])


@pytest.mark.parametrize(
    "scale, reference, expected",
    [
        ("abs", None, [1, 0.5, 0]),
        ("abs", 8.0, [0.5, 0.25, 0]),
        ("minmax", None, [0, 1, 4 / 6]),
        ("offset", None, [0, 0.75, 0.5]),
        ("offset", 2.0, [0, 1, 0.5]),
        ("clip", None, [0, 1, 0]),
    ],
)
def test_to_display_mappings(scale, reference, expected):
    out = to_display(SIGNED, scale, reference)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)


@pytest.mark.filterwarnings("error")  # a division by zero would warn
@pytest.mark.parametrize("value", [0.0, 3.0])
def test_to_display_constant_images(value):
    flat = np.full((3, 3), value)
    assert (to_display(flat, "abs") == (1 if value else 0)).all()
    assert (to_display(flat, "minmax") == 0).all()
    assert (to_display(flat, "offset") == (1 if value else 0.5)).all()


@pytest.mark.parametrize(
    "scale, array, reference, match",
    [
        ("loud", SIGNED, None, "scale must be one of abs, minmax, offset, clip"),
        ("abs", np.array([1.0, np.nan]), None, "NaN"),
        ("abs", SIGNED, 0.0, "must be positive"),
        ("minmax", SIGNED, 1.0, "abs or offset"),
    ],
)
def test_to_display_errors(scale, array, reference, match):
    with pytest.raises(OutputError, match=match):
        to_display(array, scale, reference)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e6, 1e6)),
    st.sampled_from(["abs", "minmax", "offset", "clip"]),
)
def test_to_display_stays_in_range_and_keeps_order(values, scale):
    out = to_display(values, scale)
    assert out.min() >= 0 and out.max() <= 1
    if scale != "abs":  # every other mapping is monotone
        order = np.argsort(values, kind="stable")
        assert (np.diff(out[order].astype(np.float64)) >= -1e-6).all()
