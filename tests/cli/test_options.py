"""The CLI's choices are the core's: each enum of convcli.cli.options lists exactly the values the
core module that uses them checks against, and the core accepts every one of them."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.cli import options
from convcli.images import convpool, read, tonemap
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.nn import optim
from convcli.nn.model import build_model
from convcli.ops import pool, windows
from convcli.ops.pool import pool2d
from convcli.shapes import CONVENTIONS, parse_padding

from conftest import grey_png, run


def values(enum) -> list[str]:
    return [member.value for member in enum]


@pytest.mark.parametrize(
    "enum, core",
    [
        (options.Scale, tonemap.SCALES),
        (options.AutoScale, convpool.AUTO_SCALES),
        (options.Channels, read.CHANNELS),
        (options.Border, windows.BORDER_MODES),
        (options.PoolMode, pool.POOL_MODES),
        (options.Convention, CONVENTIONS),
        (options.Optimizer, optim.OPTIMIZERS),
        (options.Schedule, optim.SCHEDULES),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_each_choice_list_is_the_core_one(enum, core):
    assert values(enum) == list(core)


def test_the_core_accepts_every_choice(tmp_path):
    x = np.arange(16.0).reshape(4, 4)
    for mode in values(options.Border):
        assert windows.numpy_pad_mode(mode)
    for mode in values(options.PoolMode):
        assert pool2d(x, 2, mode=mode).shape == (2, 2)
    for scale in values(options.Scale):
        assert tonemap.to_display(x - 8, scale).max() <= 1
    assert values(options.AutoScale) == ["auto", *values(options.Scale)]
    png = grey_png(tmp_path / "g.png", np.zeros((3, 3)))
    for channels in values(options.Channels):
        assert read.read_image(png, channels=channels) is not None  # no InputError
    for convention in values(options.Convention):
        assert parse_padding("same", convention) in ("same", "tf")
    model = build_model(analyse(parse_words(["4x4x1", "flatten", "fc:2"])))
    for name in values(options.Optimizer):
        assert optim.make_optimizer(name, model, 0.1)
    for schedule in values(options.Schedule):
        assert 0 < optim.scheduled_lr(schedule, 0.1, 1, 3) <= 0.1


def test_wrap_is_a_border_mode_on_the_command_line_too():
    """The core took --mode wrap (numpy's name for circular) and the CLI's hand-written list did not."""
    result = run("conv", "1,2;3,4", "-k", "1,0;0,1", "-p", 1, "--mode", "wrap", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == run("conv", "1,2;3,4", "-k", "1,0;0,1", "-p", 1, "--mode", "circular", "--json").stdout


def test_a_value_the_core_does_not_know_is_a_usage_error():
    result = run("pool", "1,2;3,4", "--mode", "median")
    assert result.exit_code == 2 and "'median' is not one of 'max', 'avg'" in result.stderr, result.stderr
