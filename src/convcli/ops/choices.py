"""The names the ops accept for their modes. Nothing heavy is imported here: the CLI builds its
``--mode`` choices from these without loading numpy."""

BORDER_MODES: dict[str, str] = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}
"""convcli border mode -> the ``numpy.pad`` mode that implements it (`convcli.ops.windows` has
the same modes under scipy's and OpenCV's names)."""

POOL_MODES = ("max", "avg")
