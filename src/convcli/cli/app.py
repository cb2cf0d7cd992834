"""The Typer application, lazy loading of command modules, and the one place where convcli's
errors become `Error: ...` lines."""

from __future__ import annotations

import importlib
import sys

import typer
from typer.core import TyperGroup

from convcli import __version__
from convcli.cli.options import command_app
from convcli.errors import ConvcliError, did_you_mean

# Command name -> the module under convcli.cli that defines it. Only the module of the command
# being run is imported (and turned into Click objects): start-up time is a feature.
COMMANDS = {
    "shape-calc": "networks",
    "params": "networks",
    "flops": "networks",
    "draw": "networks",
    "edges": "images",
    "conv": "images",
    "pool": "images",
    "train": "training",
    "train-filter": "training",
    "evaluate": "training",
    "predict": "training",
    "export": "training",
    "features": "training",
}


class _Group(TyperGroup):
    """Loads a command's module on first use; reports a ConvcliError as one line on stderr with
    exit code 1, and a usage mistake (an unknown option, a missing argument) as one line with
    exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        except Exception as err:
            # Click's exceptions carry format_message (typer vendors Click from 0.23, so their
            # classes are not imported by name)
            if not hasattr(err, "format_message"):
                raise
            if type(err).__name__ == "NoArgsIsHelpError":  # no arguments: the help, whole
                err.show()
                sys.exit(err.exit_code)
            ctx = getattr(err, "ctx", None)
            hint = f"; see '{ctx.command_path} -h'" if ctx is not None else ""
            typer.echo(f"Error: {err.format_message().rstrip('.')}{hint}", err=True)
            sys.exit(err.exit_code)
        sys.exit(result if isinstance(result, int) else 0)

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        sub = importlib.import_module(f"convcli.cli.{module}")
        # Build Click objects for this one command only, not for its whole module.
        single = command_app()
        single.registered_commands = [
            info
            for info in sub.app.registered_commands
            if (info.name or info.callback.__name__.replace("_", "-")) == name
        ]
        return typer.main.get_command(single)

    def resolve_command(self, ctx, args):
        if args and args[0] not in COMMANDS and not args[0].startswith("-"):
            ctx.fail(f"No such command '{args[0]}'{did_you_mean(args[0], COMMANDS)}; commands: {', '.join(COMMANDS)}.")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConvcliError as err:
            typer.echo(f"Error: {err}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    name="convcli",
    help="A command-line toolkit for convolutional neural networks: output shapes, receptive "
    "fields, parameter and MAC counts, edge detection, convolution and pooling, and CNNs "
    "trained from scratch in numpy.",
    epilog="Run 'convcli COMMAND --help' for the options and examples of each command.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """A command-line toolkit for convolutional neural networks."""


def main() -> None:
    """The `convcli` console script and `python -m convcli`."""
    app(prog_name="convcli")
