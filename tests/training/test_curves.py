"""Training-curve pictures (convcli.training.curves): tick values, what is drawn, atomic PNG writes."""

from __future__ import annotations

import errno
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from convcli.errors import OutputError
from convcli.training.curves import (
    BLUE,
    ORANGE,
    PANEL,
    Series,
    chart,
    check_png,
    log_ticks,
    loss_curve,
    nice_ticks,
    tick_labels,
    training_curves,
    write_png,
)
from convcli.training.loop import EpochRecord


@given(st.floats(-1e6, 1e6), st.floats(0, 1e6), st.integers(2, 8))
def test_nice_ticks_cover_the_range_in_round_equal_steps(lo, span, n):
    hi = lo + span
    ticks = nice_ticks(lo, hi, n)
    steps = np.diff(ticks)
    assert len(ticks) >= 2 and np.allclose(steps, steps[0])
    assert ticks[0] <= lo + 1e-6 * steps[0] and ticks[-1] >= hi - 1e-6 * steps[0]
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))


def test_integer_ticks_for_epochs():
    assert nice_ticks(1, 3, 6, integer=True) == [1, 2, 3]
    assert nice_ticks(1, 40, 6, integer=True) == [0, 10, 20, 30, 40]
    assert nice_ticks(1, 1, 6, integer=True) == [0, 1, 2]


def test_log_ticks_are_powers_of_ten():
    assert log_ticks(2.5e-14, 4.5) == [1e-15, 1e-12, 1e-09, 1e-06, 1e-03, 1.0, 1e3]
    assert log_ticks(0.5, 0.6) == [0.1, 1.0]


def test_a_linear_axis_labels_every_tick_with_the_same_decimals():
    assert tick_labels(nice_ticks(0.03, 1.6)) == ["0.0", "0.5", "1.0", "1.5", "2.0"]
    assert tick_labels([0.0, 0.25, 0.5, 0.75]) == ["0.00", "0.25", "0.50", "0.75"]
    assert tick_labels(nice_ticks(1, 40, 6, integer=True)) == ["0", "10", "20", "30", "40"]
    assert tick_labels([-0.5, 0.0, 0.5]) == ["-0.5", "0.0", "0.5"]
    assert tick_labels(nice_ticks(0.6, 1.0, 5), percent=True) == ["60%", "70%", "80%", "90%", "100%"]
    assert tick_labels([0.9, 0.925, 0.95], percent=True) == ["90.0%", "92.5%", "95.0%"]


@given(st.floats(-1e4, 1e4), st.floats(1e-4, 1e4), st.integers(2, 8))
def test_linear_tick_labels_share_one_format_and_read_back_as_the_ticks(lo, span, n):
    ticks = nice_ticks(lo, lo + span, n)
    labels = tick_labels(ticks)
    assert len({len(label.partition(".")[2]) for label in labels}) == 1
    step = ticks[1] - ticks[0]
    assert all(abs(float(label) - v) <= 1e-6 * step for label, v in zip(labels, ticks))


def test_a_log_axis_labels_every_tick_as_a_power_of_ten():
    assert tick_labels(log_ticks(3e-5, 0.2), log=True) == ["10^-5", "10^-4", "10^-3", "10^-2", "10^-1", "10^0"]
    assert tick_labels(log_ticks(2.5e-14, 4.5), log=True) == [
        "10^-15",
        "10^-12",
        "10^-9",
        "10^-6",
        "10^-3",
        "10^0",
        "10^3",
    ]


def history(epochs, validation=True):
    return [
        EpochRecord(
            epoch=e,
            lr=0.1,
            train_loss=1 / e,
            train_accuracy=1 - 0.2 / e,
            val_loss=1.1 / e if validation else None,
            val_accuracy=1 - 0.25 / e if validation else None,
            seconds=1.0,
            images_per_second=100.0,
        )
        for e in range(1, epochs + 1)
    ]


def colour_count(image: Image.Image, colour) -> int:
    return int(np.all(np.asarray(image.convert("RGB")) == colour, axis=-1).sum())


def test_training_curves_draw_both_parts():
    image = training_curves(history(5), "net")
    assert image.size == (2 * PANEL[0], PANEL[1])
    assert colour_count(image, BLUE) > 200 and colour_count(image, ORANGE) > 200
    alone = training_curves(history(5, validation=False))
    assert colour_count(alone, BLUE) > 200 and colour_count(alone, ORANGE) == 0  # no validation, no legend entry


def test_lines_go_where_the_values_are():
    """A rising line: its left end low in the plot, its right end high."""
    image = np.asarray(chart([Series("x", [1, 2, 3], [0.0, 0.5, 1.0], BLUE, "")], "t", "x", "y"))
    ys, xs = np.nonzero(np.all(image == BLUE, axis=-1))
    left, right = ys[xs < xs.min() + 5].mean(), ys[xs > xs.max() - 5].mean()
    assert left > right + 200


def test_loss_curve_on_a_log_scale_skips_zeros():
    image = loss_curve([10.0, 1.0, 0.1, 0.0], "filter")
    assert image.size == PANEL and colour_count(image, BLUE) > 100
    with pytest.raises(OutputError, match="nothing to plot"):
        loss_curve([0.0], "filter")


def test_write_png_is_atomic_and_checked(tmp_path):
    image = training_curves(history(2))
    path = write_png(tmp_path / "c.png", image)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == image.size
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary file left
    with pytest.raises(OutputError, match=r"end the name in \.png"):
        write_png(tmp_path / "c.jpg", image)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        write_png(tmp_path / "d.png", image)


def test_plot_follows_the_umask_and_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        path = write_png(tmp_path / "c.png", training_curves(history(2)))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644

    class HalfImage:
        def save(self, file, format):
            file.write(b"\x89PNG half")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="No space left"):
        write_png(tmp_path / "d.png", HalfImage())
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]


def test_plot_never_overwrites_an_input_or_another_output(tmp_path):
    data = tmp_path / "data.png"
    data.write_bytes(b"precious")
    with pytest.raises(OutputError, match="--plot .*data.png is also an input"):
        check_png(data, inputs=[data])
    with pytest.raises(OutputError, match="another output"):
        check_png(tmp_path / "c.png", others=[tmp_path / "sub" / ".." / "c.png"])
    assert data.read_bytes() == b"precious"
