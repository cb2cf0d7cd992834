"""Convolution and pooling of one image or matrix: the core of ``convcli conv`` and ``convcli pool``.

An input (an image, a matrix file, ``-`` or a typed matrix) becomes a ``(C, H, W)`` volume and a
kernel a ``(fH, fW)`` or ``(C, fH, fW)`` matrix, as `convcli.images.inputs` describes. An (fH, fW)
kernel filters every input channel on its own (C outputs); a (C, fH, fW) kernel must match the
input's C and sums over them (one output), as a CNN layer does. Several kernels stack their
outputs along the channel axis.

Matrices are computed in float64 and keep integers integer when the input and every kernel are;
images in float32. The window geometry is `convcli.ops.windows`' (its sizes are
`convcli.shapes`', the arithmetic behind ``shape-calc``); outputs above ``max_pixels`` or work
beyond the machine's memory are refused before anything is allocated (`check_sizes`).

Files written for an image input (none for a matrix unless ``-o`` is given):

- by default ``<stem>_<kernel>.png`` next to the input, one file per kernel (``<stem>_maxpool.png``
  for pooling); ``-o DIR`` puts them in DIR; ``-o FILE`` writes the whole stack to one file,
  ``-o -`` to standard output as PNG; none of them may be an input (`plan_outputs`);
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
from typing import IO

import numpy as np

from convcli.errors import InputError, OutputError, ShapeError
from convcli.images.choices import AUTO_SCALES
from convcli.images.inputs import InputWord, Source, load_kernel, load_source, resolve_input
from convcli.images.read import DEFAULT_MAX_PIXELS, STDIN
from convcli.images.write import STDOUT, UNNAMED_STDIN, check_writable, output_format, write_image
from convcli.ops.choices import POOL_MODES
from convcli.ops.conv import conv2d
from convcli.ops.pool import global_pool2d, pool2d
from convcli.ops.windows import Windows, conv_windows, int_pair, numpy_pad_mode, pad2d, pool_windows
from convcli.outputs import check_output_path


@dataclass(frozen=True)
class Plan:
    """The files a run writes, decided and checked before anything is read: ``whole`` is one
    file (or ``-``) for the whole result, else ``parts`` holds one file per label."""

    whole: Path | None = None
    parts: tuple[Path, ...] = ()


def plan_outputs(
    word: InputWord,
    labels: Sequence[str],
    output: str | None,
    inputs: Sequence[Path],
    printed: bool = False,
    bit_depth: int = 8,
) -> Plan:
    """Where the result goes, each file checked against ``inputs``, for a writable place and for
    a format that takes ``bit_depth``.

    Without ``-o``: nothing for a matrix (it is printed) or with ``printed`` (global pooling),
    else ``<stem>_<label>.png`` next to the image. ``-o DIR``: those names in DIR. ``-o FILE``
    or ``-o -``: the whole stack in one file, or on stdout.
    """
    if output is not None and (output == STDOUT or not Path(output).is_dir()):
        check_writable(output, bit_depth)  # an unknown suffix or a bit depth it has not: now, not after the work
        return Plan(whole=Path(output) if output == STDOUT else check_output_path(output, inputs))
    if output is None:
        if word.kind != "image" or printed:
            return Plan()
        if word.path is None:
            raise OutputError(UNNAMED_STDIN)
        folder = word.path.parent
    else:
        folder = Path(output)
    stem = word.path.stem if word.path is not None else ("stdin" if word.word == STDIN else "matrix")
    parts: dict[Path, str] = {}
    for label in labels:
        path = folder / f"{stem}_{label}.png"
        if path in parts:
            raise OutputError(f"kernels {parts[path]} and {label} would both write {path}; give each kernel once")
        parts[path] = label
        check_writable(path, bit_depth)
    return Plan(parts=tuple(check_output_path(path, inputs) for path in parts))


@dataclass(frozen=True, kw_only=True)
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
    animate: str | None = None
    """A .gif or .png to draw the window over a single-channel matrix in, one frame per output."""
    frames: int | None = None
    """With ``animate``: at most this many frames, spread over the output positions."""


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """``convcli pool`` options; ``size`` None means 2, ``stride`` None the window size.

    With ``global_pool`` each whole channel is one window: a size, stride, padding or ceil
    given with it is refused rather than ignored.
    """

    size: int | None = None
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
    geometry: Windows
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
    stdin: IO | None = None,
) -> FilterResult:
    """``convcli conv``: read the input and kernels, convolve, write image outputs; see the module doc.

    Every output is planned and checked before the input is decoded: none may be an input (the
    image, a matrix file or a kernel file).
    """
    if not kernel_args:
        raise InputError("give at least one --kernel (a name such as sobel-x, or a matrix such as '1,0,-1')")
    _check_scale(settings.scale)
    numpy_pad_mode(settings.mode, "--mode")
    stride, dilation = int_pair(settings.stride, "--stride"), int_pair(settings.dilation, "--dilation")
    kernels = [load_kernel(arg, i) for i, arg in enumerate(kernel_args, start=1)]
    word = resolve_input(input_arg, stdin)
    inputs = [p for p in [word.path, *(k.path for k in kernels)] if p is not None]
    plan = plan_outputs(word, [k.name for k in kernels], output, inputs, bit_depth=settings.bit_depth)
    if settings.animate is not None:
        from convcli.draw.files import check_animation

        check_animation(settings.animate, inputs)
        if len(kernels) != 1:
            raise InputError(f"--animate shows one kernel at work; got {len(kernels)} --kernel options")
    source = load_source(word, settings.channels, settings.max_pixels)
    c, h, w = source.array.shape
    n_out = sum(1 if k.array.ndim == 3 else c for k in kernels)  # output planes of the whole stack
    windows: list[Windows] = []
    for kernel in kernels:
        k = kernel.array
        if k.ndim == 3 and k.shape[0] != c:
            raise ShapeError(
                f"kernel {kernel.name} has {k.shape[0]} channels but {source.name} has "
                f"{c}; give one channel per input channel or a 2-D kernel"
            )
        fh, fw = k.shape[-2:]
        g = conv_windows(h, w, fh, fw, stride, settings.padding, dilation, what=f"kernel {kernel.name}")
        if windows and (g.oh, g.ow) != (windows[0].oh, windows[0].ow):
            raise ShapeError(
                f"kernel {kernel.name} gives a {g.oh} x {g.ow} output but kernel "
                f"{kernels[0].name} gives {windows[0].oh} x {windows[0].ow}; stack kernels "
                "of one size or use --padding same"
            )
        check_sizes("conv", g, c, n_out, settings.max_pixels, source.array.itemsize, window_copies=True)
        windows.append(g)
    stacks = []
    for kernel in kernels:
        k = kernel.array
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
    result = FilterResult(source, "conv", tuple(k.name for k in kernels), np.concatenate(stacks), integer, windows[0])
    if settings.animate is not None:
        return replace(
            result, outputs=(_animate(settings.animate, settings, source, kernels[0].array, result, inputs),)
        )
    return _write(result, [len(s) for s in stacks], plan, settings, inputs)


def _animate(
    path: str, settings: ConvSettings, source: Source, kernel: np.ndarray, result: FilterResult, inputs
) -> Path:
    """The course's picture of ``result``: the window over the padded matrix with its numbers."""
    from convcli.draw.arithmetic import Numbers, animate
    from convcli.shapes import axis

    g = result.geometry
    if source.path is not None or source.array.shape[0] != 1 or kernel.ndim != 2:
        raise InputError("--animate draws a single-channel typed or file matrix with a 2-D kernel, not an image")
    if g.h != g.w or g.fh != g.fw or g.sh != g.sw or g.dh != g.dw or g.pads[:2] != g.pads[2:]:
        raise InputError(
            f"--animate draws a square setting: the matrix is {g.h} x {g.w} and the kernel {g.fh} x {g.fw}"
        )
    layer = axis(g.h, g.fh, g.sh, settings.padding, g.dh)
    grid = pad2d(source.array[0], g.pads, settings.mode)
    shown = kernel[::-1, ::-1] if settings.flip else kernel
    numbers = Numbers(*(tuple(map(tuple, a.tolist())) for a in (grid, shown, result.output[0])))
    return animate(path, layer, settings.frames, inputs, numbers)[1]


def pool(
    input_arg: str, settings: PoolSettings = PoolSettings(), output: str | None = None, stdin: IO | None = None
) -> FilterResult:
    """``convcli pool``: pool every channel of the input; write image outputs; see the module doc."""
    _check_scale(settings.scale)
    if settings.mode not in POOL_MODES:
        raise InputError(f"--mode {settings.mode!r} is not one of {', '.join(POOL_MODES)}")
    if not settings.count_pad and settings.mode != "avg":
        raise InputError("--no-count-pad applies to average pooling (--mode avg); max pooling never counts")
    if settings.global_pool:
        given = {"--size": settings.size, "--stride": settings.stride, "--padding": settings.padding or None}
        ignored = [name for name, value in given.items() if value is not None] + ["--ceil"] * settings.ceil
        if ignored:
            raise InputError(f"--global pools each whole channel as one window; {', '.join(ignored)} do not apply")
    size = int_pair(2 if settings.size is None else settings.size, "--size")
    stride = size if settings.stride is None else int_pair(settings.stride, "--stride")
    label = f"{settings.mode}pool"
    word = resolve_input(input_arg, stdin)
    inputs = [word.path] if word.path is not None else []
    labels = [f"global{label}" if settings.global_pool else label]
    plan = plan_outputs(word, labels, output, inputs, printed=settings.global_pool, bit_depth=settings.bit_depth)
    source = load_source(word, settings.channels, settings.max_pixels)
    c, h, w = source.array.shape
    if settings.global_pool:
        y = global_pool2d(source.array[None], settings.mode)[0]  # C, 1, 1
        g = pool_windows(h, w, (h, w))
        result = FilterResult(source, f"global {label}", tuple(labels), y, source.integer and settings.mode == "max", g)
        return _write(result, [c], plan, settings, inputs, as_matrix=True)
    g = pool_windows(h, w, size, stride, settings.padding, ceil=settings.ceil, what="pool")
    check_sizes("pool", g, c, c, settings.max_pixels, source.array.itemsize)
    y = pool2d(
        source.array,
        size,
        stride=stride,
        padding=settings.padding,
        ceil=settings.ceil,
        mode=settings.mode,
        count_include_pad=settings.count_pad,
    )  # C, H', W'
    result = FilterResult(source, label, tuple(labels), y, source.integer, g)
    return _write(result, [c], plan, settings, inputs)


def check_sizes(
    what: str, g: Windows, planes: int, outputs: int, max_pixels: int, itemsize: int, window_copies: bool = False
) -> None:
    """Refuse, before allocating, a result above ``max_pixels`` per plane, or work that needs
    more memory than the machine has.

    The work holds the padded input twice (padded, then laid out for the matmul), the output,
    and for a convolution every window's values (im2col: ``fh * fw`` copies of each output pixel).

    >>> from convcli.ops.windows import conv_windows
    >>> check_sizes("conv", conv_windows(2, 2, 1, 1, padding=100_000), 1, 1, 10**8, 8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    convcli.errors.ShapeError: conv: the output would be 200,002 x 200,002 = 40,000,800,004 pixels per channel, ...
    """
    pixels = g.oh * g.ow
    if pixels > max_pixels:
        raise ShapeError(
            f"{what}: the output would be {g.oh:,} x {g.ow:,} = {pixels:,} pixels per channel, above the "
            f"--max-pixels limit of {max_pixels:,}; less padding or dilation, or raise --max-pixels"
        )
    hp, wp = g.padded
    copies = g.fh * g.fw if window_copies else 0
    need = itemsize * (2 * planes * hp * wp + (outputs + copies * planes) * pixels)
    have = _memory()
    if have is not None and need > have:
        windows = f", {copies} window values per output pixel" if copies else ""
        raise ShapeError(
            f"{what}: would need {need / 2**30:,.1f} GiB of memory (the input padded to {hp:,} x {wp:,} x "
            f"{planes}{windows}, an output of {g.oh:,} x {g.ow:,} x {outputs}), more than the "
            f"{have / 2**30:,.1f} GiB this machine has; use less padding or a smaller kernel or input"
        )


def _memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say (Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_scale(scale: str) -> None:
    if scale not in AUTO_SCALES:
        raise InputError(f"--scale {scale!r} is not one of {', '.join(AUTO_SCALES)}")


def auto_scale(values: np.ndarray) -> str:
    """The ``auto`` scale for a result: offset if signed, clip if within [0, 1], else minmax.

    >>> auto_scale(np.array([-1.0, 2.0])), auto_scale(np.array([0.2, 0.9])), auto_scale(np.array([3.0]))
    ('offset', 'clip', 'minmax')
    """
    if values.min() < 0:
        return "offset"
    return "clip" if values.max() <= 1 else "minmax"


def _write(
    result: FilterResult, counts: list[int], plan: Plan, settings, inputs: list[Path], as_matrix: bool = False
) -> FilterResult:
    """Write the planned files; record them in the result."""
    if plan.whole is not None:
        as_printed = result.source.path is None or as_matrix
        array = result.output.reshape(result.matrix_shape) if as_printed else result.output
        scale = _scale(result.output, settings.scale, plan.whole)
        path = _write_one(plan.whole, array, result.integer, scale, settings, inputs)
        return replace(result, scales=(scale,), outputs=(path,))
    scales, written, start = [], [], 0
    for path, n in zip(plan.parts, counts):
        part = result.output[start : start + n]  # n, H', W'
        start += n
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
