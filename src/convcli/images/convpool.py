"""Convolution and pooling of one image or matrix: the core of ``convcli conv`` and ``convcli pool``.

An input is an image file, a matrix file (``.npy``, ``.csv``, ``.txt``), ``-`` for a matrix on
stdin, or a matrix typed in the shell (`convcli.images.matrix`). Either way it becomes a ``(C, H, W)``
volume: a grey image or a 2-D matrix has C = 1.

A kernel is a registry name (`convcli.images.kernels`), a typed matrix or a matrix file. An (fH, fW)
kernel filters every input channel on its own (C outputs); a (C, fH, fW) kernel, typed with
``|`` between channels, must match the input's C and sums over them (one output), as a CNN layer
does. Several kernels stack their outputs along the channel axis.

Matrices are computed in float64 and keep integers integer when the input and every kernel are;
images in float32. Output sizes come from `convcli.shapes` (the arithmetic behind ``shape-calc``).

Files written for an image input (none for a matrix unless ``-o`` is given):

- by default ``<stem>_<kernel>.png`` next to the input, one file per kernel (``<stem>_maxpool.png``
  for pooling); ``-o DIR`` puts them in DIR; ``-o FILE`` writes the whole stack to one file;
- the suffix picks the format: 8/16-bit images go through a scale (below), ``.tif`` and ``.npy``
  keep exact values, ``.csv``/``.txt`` write the numbers as text.

The default scale (``auto``) is ``offset`` (zero mid-grey) when the result has negative values,
``clip`` when it lies in [0, 1] (a blur, a pooled image), else ``minmax``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from convcli.errors import InputError, OutputError, ShapeError
from convcli.images.kernels import get_kernel
from convcli.images.matrix import MATRIX_SUFFIXES, is_matrix_text, parse_matrix, read_matrix
from convcli.images.read import DEFAULT_MAX_PIXELS, read_image
from convcli.images.tonemap import SCALES
from convcli.images.write import output_format, write_image
from convcli.ops.conv import conv2d
from convcli.ops.pool import global_pool2d, pool2d
from convcli.ops.windows import int_pair, numpy_pad_mode, split_padding
from convcli.shapes import AxisResult, conv_axis, pool_axis


@dataclass(frozen=True)
class Source:
    """An input as a ``(C, H, W)`` volume; ``path`` is set for an image file, ``ndim`` is as given."""

    array: np.ndarray
    integer: bool
    name: str
    path: Path | None
    ndim: int
    notes: tuple[str, ...] = ()


def load_source(
    arg: str, channels: str = "gray", max_pixels: int = DEFAULT_MAX_PIXELS, stdin: TextIO | None = None
) -> Source:
    """Read an INPUT word: ``-``, a matrix file, an image file, or a typed matrix.

    >>> load_source("1,2;3,4").array.shape
    (1, 2, 2)
    """
    path = Path(arg)
    # os.path.exists, not Path.exists: a long typed matrix is a file name too long for the OS
    exists = os.path.exists(arg)
    if arg != "-" and not exists and is_matrix_text(arg):
        matrix = parse_matrix(arg)
    elif arg == "-" or path.suffix.lower() in MATRIX_SUFFIXES:
        matrix = read_matrix(arg, stdin)
    else:
        image = read_image(path, channels=channels, max_pixels=max_pixels)
        return Source(image.array, False, str(path), path, 3, image.notes)
    volume = matrix.array if matrix.array.ndim == 3 else matrix.array[None]  # C, H, W
    return Source(volume.astype(np.float64), matrix.integer, matrix.source, None, matrix.array.ndim)


@dataclass(frozen=True)
class KernelInput:
    """A kernel as given: ``(fH, fW)`` per channel, or ``(C, fH, fW)`` across channels."""

    name: str
    array: np.ndarray
    integer: bool


def load_kernel(arg: str, index: int = 1) -> KernelInput:
    """A ``--kernel`` word: a registry name, a matrix file, or a typed matrix (named ``k<index>``).

    >>> load_kernel("vertical").array.tolist()
    [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]
    """
    if not arg.strip():
        raise InputError("--kernel is empty; give a name such as sobel-x or a matrix such as '1,0,-1'")
    if os.path.exists(arg):
        matrix, name = read_matrix(arg), Path(arg).stem
    elif is_matrix_text(arg):
        matrix, name = parse_matrix(arg, source=f"--kernel {arg!r}"), f"k{index}"
    else:
        kernel = get_kernel(arg)  # an unknown name raises, suggesting the closest ones
        integer = all(float(v).is_integer() for row in kernel.matrix for v in row)
        return KernelInput(kernel.name, kernel.array(), integer)
    return KernelInput(name, matrix.array.astype(np.float64), matrix.integer)


@dataclass(frozen=True)
class Geometry:
    """Input and output size of one layer and the rows/columns that no window covers."""

    h: int
    w: int
    oh: int
    ow: int
    window: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    dropped: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)


def _geometry(
    h: int,
    w: int,
    axes: tuple[AxisResult, AxisResult],
    window: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> Geometry:
    ah, aw = axes
    return Geometry(
        h, w, ah.out, aw.out, window, stride, (ah.p_lo, ah.p_hi, aw.p_lo, aw.p_hi), (ah.dropped, aw.dropped), dilation
    )


@dataclass(frozen=True)
class ConvSettings:
    """``convcli conv`` options; ``padding`` as `convcli.shapes.parse_padding` returns it."""

    padding: int | str = 0
    mode: str = "zeros"
    stride: int = 1
    dilation: int = 1
    flip: bool = False
    channels: str = "gray"
    scale: str = "auto"
    bit_depth: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class PoolSettings:
    """``convcli pool`` options; ``stride`` None means the window size."""

    size: int = 2
    stride: int | None = None
    padding: int | str = 0
    ceil: bool = False
    mode: str = "max"
    count_pad: bool = True
    global_pool: bool = False
    channels: str = "gray"
    scale: str = "auto"
    bit_depth: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class FilterResult:
    """One conv or pool run: the ``(C_out, H', W')`` output, its geometry and the files written.

    ``labels`` names each output channel group (one per kernel); ``matrix_shape`` is the shape a
    matrix result is printed with: 2-D when the input was 2-D and there is one output channel,
    (C,) for global pooling.
    """

    source: Source
    operation: str
    labels: tuple[str, ...]
    output: np.ndarray
    integer: bool
    geometry: Geometry
    scales: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()

    @property
    def matrix_shape(self) -> tuple[int, ...]:
        if self.operation.startswith("global"):
            return self.output.shape[:1]
        squeeze = self.source.ndim == 2 and self.output.shape[0] == 1
        return self.output.shape[1:] if squeeze else self.output.shape


def convolve(
    input_arg: str,
    kernel_args: Sequence[str],
    settings: ConvSettings = ConvSettings(),
    output: str | None = None,
    stdin: TextIO | None = None,
) -> FilterResult:
    """``convcli conv``: read the input and kernels, convolve, write image outputs; see the module doc."""
    if not kernel_args:
        raise InputError("give at least one --kernel (a name such as sobel-x, or a matrix such as '1,0,-1')")
    _check_scale(settings.scale)
    numpy_pad_mode(settings.mode, "--mode")
    stride, dilation = int_pair(settings.stride, "--stride"), int_pair(settings.dilation, "--dilation")
    source = load_source(input_arg, settings.channels, settings.max_pixels, stdin)
    kernels = [load_kernel(arg, i) for i, arg in enumerate(kernel_args, start=1)]
    c, h, w = source.array.shape
    ph, pw = split_padding(settings.padding, "--padding")
    stacks, geometry = [], None
    for kernel in kernels:
        k = kernel.array
        if k.ndim == 3 and k.shape[0] != c:
            raise ShapeError(
                f"kernel {kernel.name} has {k.shape[0]} channels but {source.name} has "
                f"{c}; give one channel per input channel or a 2-D kernel"
            )
        fh, fw = k.shape[-2:]
        axes = (
            conv_axis(h, fh, stride[0], ph, dilation[0], what=f"kernel {kernel.name} (height)"),
            conv_axis(w, fw, stride[1], pw, dilation[1], what=f"kernel {kernel.name} (width)"),
        )
        g = _geometry(h, w, axes, (fh, fw), stride, dilation)
        if geometry is not None and (g.oh, g.ow) != (geometry.oh, geometry.ow):
            raise ShapeError(
                f"kernel {kernel.name} gives a {g.oh}x{g.ow} output but kernel "
                f"{kernels[0].name} gives {geometry.oh}x{geometry.ow}; stack kernels "
                "of one size or use --padding same"
            )
        geometry = geometry or g
        x, weights = (source.array[None], k[None]) if k.ndim == 3 else (source.array[:, None], k[None, None])
        y = conv2d(
            x,
            weights.astype(x.dtype),
            stride=stride,
            padding=settings.padding,
            dilation=dilation,
            mode=settings.mode,
            flip=settings.flip,
        )  # N, 1, H', W'
        stacks.append(y[:, 0] if k.ndim == 2 else y[0])  # C_k, H', W'
    integer = source.integer and all(k.integer for k in kernels)
    result = FilterResult(source, "conv", tuple(k.name for k in kernels), np.concatenate(stacks), integer, geometry)
    return _write(result, [len(s) for s in stacks], output, settings)


def pool(
    input_arg: str, settings: PoolSettings = PoolSettings(), output: str | None = None, stdin: TextIO | None = None
) -> FilterResult:
    """``convcli pool``: pool every channel of the input; write image outputs; see the module doc."""
    _check_scale(settings.scale)
    if settings.mode not in ("max", "avg"):
        raise InputError(f"--mode {settings.mode!r} is not max or avg")
    size = int_pair(settings.size, "--size")
    stride = size if settings.stride is None else int_pair(settings.stride, "--stride")
    source = load_source(input_arg, settings.channels, settings.max_pixels, stdin)
    c, h, w = source.array.shape
    label = f"{settings.mode}pool"
    if settings.global_pool:
        y = global_pool2d(source.array[None], settings.mode)[0]  # C, 1, 1
        g = Geometry(h, w, 1, 1, (h, w), (h, w), (0, 0, 0, 0), (0, 0))
        result = FilterResult(
            source, f"global {label}", (f"global{label}",), y, source.integer and settings.mode == "max", g
        )
        return _write(result, [c], output, settings, as_matrix=True)
    ph, pw = split_padding(settings.padding, "--padding")
    axes = (
        pool_axis(h, size[0], stride[0], ph, 1, settings.ceil, what="pool (height)"),
        pool_axis(w, size[1], stride[1], pw, 1, settings.ceil, what="pool (width)"),
    )
    y = pool2d(
        source.array,
        size,
        stride=stride,
        padding=settings.padding,
        ceil=settings.ceil,
        mode=settings.mode,
        count_include_pad=settings.count_pad,
    )  # C, H', W'
    result = FilterResult(source, label, (label,), y, source.integer, _geometry(h, w, axes, size, stride))
    return _write(result, [c], output, settings)


def _check_scale(scale: str) -> None:
    if scale != "auto" and scale not in SCALES:
        raise InputError(f"--scale {scale!r} is not one of auto, {', '.join(SCALES)}")


def auto_scale(values: np.ndarray) -> str:
    """The ``auto`` scale for a result: offset if signed, clip if within [0, 1], else minmax.

    >>> auto_scale(np.array([-1.0, 2.0])), auto_scale(np.array([0.2, 0.9])), auto_scale(np.array([3.0]))
    ('offset', 'clip', 'minmax')
    """
    if values.min() < 0:
        return "offset"
    return "clip" if values.max() <= 1 else "minmax"


def _write(
    result: FilterResult, counts: list[int], output: str | None, settings, as_matrix: bool = False
) -> FilterResult:
    """Write the files of an image input (or of any input given ``-o``); record them in the result."""
    source = result.source
    if output is None and (source.path is None or as_matrix):
        return result
    inputs = [source.path] if source.path is not None else []
    out = Path(output) if output is not None else None
    if out is not None and not out.is_dir():
        as_printed = source.path is None or as_matrix
        array = result.output.reshape(result.matrix_shape) if as_printed else result.output
        scale = _scale(result.output, settings.scale, out)
        path = _write_one(out, array, result.integer, scale, settings, inputs)
        return replace(result, scales=(scale,), outputs=(path,))
    folder = out if out is not None else source.path.parent
    stem = source.path.stem if source.path is not None else "matrix"
    scales, written, start = [], [], 0
    for label, n in zip(result.labels, counts):
        part = result.output[start : start + n]  # n, H', W'
        start += n
        path = folder / f"{stem}_{label}.png"
        scales.append(_scale(part, settings.scale, path))
        written.append(_write_one(path, part, result.integer, scales[-1], settings, inputs))
    return replace(result, scales=tuple(scales), outputs=tuple(written))


def _scale(values: np.ndarray, scale: str, path: Path) -> str:
    """The scale a file gets; ``exact`` for the formats that keep values as they are."""
    if output_format(path).exact:
        return "exact"
    return auto_scale(values) if scale == "auto" else scale


def _write_one(path: Path, array: np.ndarray, integer: bool, scale: str, settings, inputs: list[Path]) -> Path:
    exact = output_format(path).exact
    if not exact and array.ndim == 3 and array.shape[0] not in (1, 3):
        raise OutputError(
            f"output {path}: {array.shape[0]} channels do not fit an image file; "
            "write .tif, .npy or .csv, or give -o a directory (one file per kernel)"
        )
    return write_image(
        path,
        array,
        bit_depth=settings.bit_depth,
        scale=None if exact else scale,
        integer=integer,
        inputs=inputs,
    )
