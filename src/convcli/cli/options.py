"""What the command modules share: the Typer app they register on, the usage error, the options
several commands take, declared once, and the choices of every option whose values the core
defines.

Each choice enum is built from the core's tuple, so a mode added there is a choice here, and a
value the core does not know cannot be typed. The tuples live in light modules (`convcli.shapes`
and the ``choices`` modules beside the code that uses them): importing this module loads neither
numpy nor Pillow, so shape-calc, params and flops start fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

import typer

from convcli.draw.choices import STYLES
from convcli.images.choices import AUTO_SCALES, CHANNELS, SCALES
from convcli.nn.choices import BACKENDS, DEVICES, OPTIMIZERS, SCHEDULES
from convcli.ops.choices import BORDER_MODES, POOL_MODES
from convcli.shapes import CONVENTIONS, PADDING_MODES


def command_app() -> typer.Typer:
    """The Typer app a command module registers its commands on."""
    return typer.Typer(
        rich_markup_mode=None, add_completion=False, context_settings={"help_option_names": ["-h", "--help"]}
    )


def usage_error(message: str) -> typer.BadParameter:
    """A usage mistake: Click reports it with exit code 2."""
    return typer.BadParameter(message)


# No return annotation: mypy cannot see the members of an Enum built at run time, and would
# refuse every option annotated with one.
def choices(name: str, values: Iterable[str]):
    """A str Enum whose members are ``values``, named as they are typed (Typer lists and parses
    an Enum's values as the option's choices)."""
    return Enum(name, {value: value for value in values}, type=str)


Scale = choices("Scale", SCALES)
AutoScale = choices("AutoScale", AUTO_SCALES)
Channels = choices("Channels", CHANNELS)
Border = choices("Border", BORDER_MODES)
PoolMode = choices("PoolMode", POOL_MODES)
Convention = choices("Convention", CONVENTIONS)
Optimizer = choices("Optimizer", OPTIMIZERS)
Schedule = choices("Schedule", SCHEDULES)
Backend = choices("Backend", BACKENDS)
Device = choices("Device", DEVICES)
Style = choices("Style", STYLES)


def output_option(metavar: str, help: str):
    """``-o``/``--output``: where a command writes its result."""
    return typer.Option(None, "-o", "--output", metavar=metavar, help=help)


JsonOpt = typer.Option(False, "--json", help="Print the result as JSON.")
OutputOpt = output_option(
    "PATH", "Output file (its suffix picks the format: .png, .tif, .npy, .csv, ...), directory, or - (PNG on stdout)."
)
MaxPixelsOpt = typer.Option(
    None,
    "--max-pixels",
    metavar="N",
    show_default=False,
    help="Refuse larger images (decompression bombs) [default: 100000000].",
)
PaddingOpt = typer.Option(
    "0", "--padding", "-p", help=f"An int, or one of {', '.join(PADDING_MODES)} (same: stride 1 only)."
)
