"""The names the ops accept for their modes. Nothing heavy is imported here: the CLI builds its
``--mode`` choices from these without loading numpy."""

from typing import Literal, TypeAlias

NumpyPadMode: TypeAlias = Literal["constant", "reflect", "edge", "wrap", "symmetric"]
"""The ``numpy.pad`` modes behind ours."""

BORDER_MODES: dict[str, NumpyPadMode] = {
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

FUSED_ACTIVATIONS = ("relu", "relu6")
"""Activations an op applies to its own output in the pass that makes it (a batch norm's, an
inference convolution's): both are a clamp, done in place."""
