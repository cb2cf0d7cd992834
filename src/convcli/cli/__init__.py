"""convcli's command line: thin commands that parse options, call one core function and render.

Each command module (networks, images, training) has its own Typer app; the root app imports only
the module of the command being run (see `convcli.cli.app.COMMANDS`), and command modules import numpy and
Pillow inside the commands that need them: shape-calc, params and flops start as fast as typer.
"""
