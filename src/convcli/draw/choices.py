"""What `convcli draw` accepts, in a module that imports nothing: the CLI builds its choices from
it without loading the drawing code."""

STYLES = ("3d", "flat")
MIN_WIDTH, DEFAULT_WIDTH = 400, 1200
"""Rows of a drawing wrap at ``DEFAULT_WIDTH`` pixels unless told otherwise."""
