"""Edge detection on image files: the core of ``convcli edges``.

The filters and the arithmetic live in `convcli.images.gradients`: an x/y kernel pair (Sobel by default)
gives the gradient magnitude, a single kernel such as the Laplacian its absolute response.

What gets written for each input (names derive from the main output, ``<stem>_edges.png`` by
default):

- the main output: the magnitude mapped to 8 or 16 bits by a ``--scale``, or exact float32 values
  in ``.tif``/``.npy``. The default ``abs`` divides by the 99.5th percentile of the magnitude
  (`display_reference`), so the strongest 0.5% of pixels are white: scaled by the maximum, one
  specular highlight would leave every other edge dim. ``minmax`` maps the exact range;
  with a threshold ``t`` it is instead the binary map ``magnitude >= t * max``;
- ``<main stem>_orientation.png``: the gradient direction as hue (0 deg red: brightness rises to
  the right; 90 deg yellow-green: rises upward; 180 deg cyan: to the left; 270 deg blue-violet:
  downward), brightness the magnitude, so flat areas stay black; a colour wheel in the
  bottom-right corner is the key (maps of at least 128 x 128). A ``.tif``/``.npy`` main output
  gets the angle itself, in degrees counter-clockwise from the +x axis, in (-180, 180];
- ``<main stem>_panel.png``: input | x response | y response | magnitude, labelled; signed
  responses are mapped with zero as mid-grey, both on one scale so they compare.

With ``channels="rgb"`` each colour channel is filtered on its own and the magnitudes are written
as colour: an edge between two colours of equal brightness, which grey conversion would erase,
shows in the channels where it exists. The orientation then follows the strongest channel at each
pixel (as OpenCV's Canny does for colour).

One bad file among several does not stop the others: `detect_edges` records its error in its
`EdgeResult` and carries on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convcli.errors import ConvcliError, InputError, OutputError
from convcli.images.choices import CHANNELS
from convcli.images.gradients import (
    PAIRS,
    EdgeFilter,
    EdgeMaps,
    display_reference,
    edge_filter,
    edge_maps,
    orientation_degrees,
)
from convcli.images.read import DEFAULT_MAX_PIXELS, STDIN, read_image, stdin_bytes
from convcli.images.tonemap import SCALES, to_display
from convcli.images.write import STDOUT, UNNAMED_STDIN, WRITE_SUFFIXES, check_writable, output_format, write_image
from convcli.ops.windows import numpy_pad_mode
from convcli.outputs import PathLike, check_output_path


@dataclass(frozen=True, kw_only=True)
class EdgeOptions:
    """Everything ``convcli edges`` lets a user choose; see the module docstring."""

    filter: str = "sobel"
    channels: str = "gray"
    mode: str = "reflect"
    scale: str = "abs"
    threshold: float | None = None
    orientation: bool = False
    panel: bool = False
    bit_depth: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS


def orientation_colours(angle: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """(3, H, W) RGB in [0, 1]: hue from the (H, W) ``angle`` in degrees, value from the magnitude
    (scaled as the ``abs`` default: `display_reference` is full brightness)."""
    from PIL import Image

    value = to_display(magnitude, "abs", display_reference(magnitude))
    hue = np.rint(np.mod(angle, 360) * (255 / 360)).astype(np.uint8)
    planes = [Image.fromarray(p) for p in (hue, np.full_like(hue, 255), np.rint(value * 255).astype(np.uint8))]
    rgb = np.asarray(Image.merge("HSV", planes).convert("RGB"), dtype=np.float32) / 255  # H, W, 3
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


LEGEND_MIN_SIDE = 128
"""Orientation maps narrower or lower than this get no legend: it would hide too much of them."""


def legend_box(height: int, width: int) -> tuple[int, int, int, int] | None:
    """Where the colour wheel goes in an orientation map: (top, left, height, width) of a box in
    the bottom-right corner, or None when the map is too small to hold one."""
    if min(height, width) < LEGEND_MIN_SIDE:
        return None
    side = int(np.clip(min(height, width) // 4, 48, 128))  # 48: room for the degree marks
    margin = max(2, side // 16)
    wide = side + side // 3  # the marks at 0 and 180 degrees sit beside the wheel
    return height - margin - side, width - margin - wide, side, wide


def with_orientation_legend(colours: np.ndarray) -> np.ndarray:
    """``colours`` (3, H, W) from `orientation_colours` with a colour wheel in its `legend_box`:
    a ring on black whose colour at each angle is the colour of a gradient pointing that way
    from the centre, marked in degrees (up is 90), so a direction can be read off the map."""
    from PIL import Image, ImageDraw, ImageFont

    box = legend_box(*colours.shape[1:])
    if box is None:
        return colours
    top, left, high, wide = box
    cy, cx = (high - 1) / 2, (wide - 1) / 2
    rows, cols = np.mgrid[0:high, 0:wide] - np.array([cy, cx])[:, None, None]
    radius = np.hypot(rows, cols) / (high / 2)
    ring = (radius >= 0.3) & (radius <= 0.62)
    angle = np.degrees(np.arctan2(-rows, cols))  # rows grow downward; the wheel's up is +90
    wheel = orientation_colours(angle, ring.astype(np.float64))
    wheel[:, [0, -1], :] = 0.5  # a grey frame parts the key from the map
    wheel[:, :, [0, -1]] = 0.5
    tile = Image.fromarray(np.rint(wheel.transpose(1, 2, 0) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default(size=max(9, high // 9))
    edge = 3 + high // 32
    marks = {"0": (wide - edge, cy, "rm"), "90": (cx, edge, "mt"), "180": (edge, cy, "lm")}
    marks["270"] = (cx, high - edge, "mb")
    for label, (x, y, anchor) in marks.items():
        draw.text((x, y), label, fill=(230, 230, 230), font=font, anchor=anchor)
    out = colours.copy()
    out[:, top : top + high, left : left + wide] = np.asarray(tile, dtype=np.float32).transpose(2, 0, 1) / 255
    return out


@dataclass(frozen=True)
class EdgeResult:
    """What happened to one input: its size, the response range, the files written, or the error."""

    path: Path
    filter: str
    shape: tuple[int, ...] = ()
    low: float = 0.0
    high: float = 0.0
    seconds: float = 0.0
    outputs: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class EdgeTargets:
    """The files one input writes: the main output and, if asked for, orientation and panel."""

    edges: Path
    orientation: Path | None = None
    panel: Path | None = None


def plan_outputs(paths: Sequence[PathLike], output: PathLike | None, options: EdgeOptions) -> list[EdgeTargets]:
    """Output files for every input, checked before anything is read or written: distinct, in a
    writable place, and none of them one of the inputs (also through a link).

    ``output`` is None (next to each input), a directory (an existing one, a name ending in
    ``/``, or any name when there are several inputs; created if missing), a file for one input,
    or ``-`` (standard output; one input, no side outputs). An input ``-`` is standard input.
    """
    if sum(str(p) == STDIN for p in paths) > 1:
        raise InputError("standard input (-) can be read once; give it as one input")
    if output is not None and str(output) == STDOUT:
        if len(paths) > 1:
            raise OutputError(f"-o - writes one image to standard output, but there are {len(paths)} inputs")
        if options.orientation or options.panel:
            raise OutputError("--all and --orientation write files named after -o; give -o FILE, not -")
    outdir = None
    if output is not None and str(output) != STDOUT:
        text = str(output)
        out = Path(output)
        if out.is_dir() or text.endswith(("/", "\\")) or len(paths) > 1:
            if not out.is_dir() and out.suffix.lower() in WRITE_SUFFIXES:
                raise OutputError(f"-o {out} names a file, but there are {len(paths)} inputs; give a directory")
            outdir = out
            try:
                outdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"output directory {out}: {exc.strerror or exc}") from None
    inputs = [Path(p) for p in paths if str(p) != STDIN]
    targets: list[EdgeTargets] = []
    seen: dict[Path, Path] = {}
    for path in paths:
        src = Path(path)
        if output is not None and outdir is None:
            main = Path(output)
        elif str(path) == STDIN and outdir is None:
            raise OutputError(UNNAMED_STDIN)
        else:
            stem = "stdin" if str(path) == STDIN else src.stem
            main = (outdir or src.parent) / f"{stem}_edges.png"
        channels = 3 if options.channels == "rgb" else 1
        extra = main.suffix if check_writable(main, options.bit_depth, channels).exact else ".png"
        target = EdgeTargets(
            main,
            main.with_name(f"{main.stem}_orientation{extra}") if options.orientation else None,
            main.with_name(f"{main.stem}_panel.png") if options.panel else None,
        )
        for written in (target.edges, target.orientation, target.panel):
            if written is None:
                continue
            if written in seen:
                raise OutputError(
                    f"inputs {seen[written]} and {src} would both write {written}; "
                    "rename one or use -o with separate runs"
                )
            seen[written] = src
            # a missing input fails on its own when it is read, and writes nothing
            if str(written) != STDOUT and (str(path) == STDIN or os.path.exists(src)):
                check_output_path(written, inputs)
        targets.append(target)
    return targets


def check_options(options: EdgeOptions) -> EdgeFilter:
    """Refuse bad option values before any file is read; return the resolved filter."""
    filt = edge_filter(options.filter)
    numpy_pad_mode(options.mode, "--mode")
    if options.scale not in SCALES:
        raise InputError(f"--scale {options.scale!r} is not one of {', '.join(SCALES)}")
    if options.threshold is not None and not 0 <= options.threshold <= 1:
        raise InputError(
            f"--threshold {options.threshold} is not a fraction of the strongest edge: give a number from 0 to 1"
        )
    if options.orientation and filt.y is None:
        raise InputError(
            f"--orientation needs an x/y pair; {filt.name} is a single kernel (pairs: {', '.join(PAIRS)}, vertical)"
        )
    if options.channels not in CHANNELS:
        raise InputError(f"--channels {options.channels!r} is not one of {', '.join(CHANNELS)}")
    return filt


def detect_edges(
    paths: Sequence[PathLike],
    options: EdgeOptions = EdgeOptions(),
    output: PathLike | None = None,
    on_file: Callable[[EdgeResult], None] | None = None,
) -> list[EdgeResult]:
    """Run edge detection on every file and write its outputs; one result per input, in order.

    Option errors and output-name clashes raise before anything is read. A file that cannot be
    read or written gives a result with ``error`` set, and the next file is processed.
    ``on_file`` is called with each result as soon as it is done (progress, notes).
    """
    filt = check_options(options)
    targets = plan_outputs(paths, output, options)
    inputs = [Path(p) for p in paths if str(p) != STDIN]
    results = []
    for path, target in zip(paths, targets):
        start = time.perf_counter()
        try:
            result = _one_file(Path(path), target, filt, options, inputs)
        except ConvcliError as err:
            result = EdgeResult(Path(path), filt.name, error=str(err))
        result = replace(result, seconds=time.perf_counter() - start)
        results.append(result)
        if on_file is not None:
            on_file(result)
    return results


def _one_file(
    path: Path, target: EdgeTargets, filt: EdgeFilter, options: EdgeOptions, inputs: Sequence[PathLike]
) -> EdgeResult:
    source = stdin_bytes() if str(path) == STDIN else path
    image = read_image(source, channels=options.channels, max_pixels=options.max_pixels)
    volume = image.array  # C, H, W
    need = options.panel or options.orientation
    maps = edge_maps(volume, filt, options.mode, components=need)
    magnitude = maps.magnitude
    top = float(magnitude.max())
    if options.threshold is not None:
        edges = (magnitude >= options.threshold * top) if top > 0 else np.zeros_like(magnitude, bool)
        written = [write_image(target.edges, edges.astype(np.float32), bit_depth=options.bit_depth, inputs=inputs)]
    else:
        ref = display_reference(magnitude) if options.scale == "abs" else None
        written = [
            write_image(
                target.edges, magnitude, bit_depth=options.bit_depth, scale=options.scale, reference=ref, inputs=inputs
            )
        ]
    if target.orientation is not None:
        written.append(_write_orientation(target.orientation, maps, filt, inputs))
    if target.panel is not None:
        written.append(_write_panel(target.panel, volume, maps, filt, options, inputs))
    return EdgeResult(
        path, filt.name, tuple(volume.shape), float(magnitude.min()), top, outputs=tuple(written), notes=image.notes
    )


def _write_orientation(path: Path, maps: EdgeMaps, filt: EdgeFilter, inputs: Sequence[PathLike]) -> Path:
    # the strongest channel at each pixel decides the direction
    strongest = maps.magnitude.argmax(axis=0)[None]  # 1, H, W
    gx = np.take_along_axis(maps.gx, strongest, axis=0)[0]  # H, W
    gy = np.take_along_axis(maps.gy, strongest, axis=0)[0]
    angle = orientation_degrees(gx, gy)
    if output_format(path).exact:
        return write_image(path, angle.astype(np.float32), inputs=inputs)
    colours = orientation_colours(angle, np.hypot(gx, gy))
    return write_image(path, with_orientation_legend(colours), inputs=inputs)


def _write_panel(
    path: Path, volume: np.ndarray, maps: EdgeMaps, filt: EdgeFilter, options: EdgeOptions, inputs: Sequence[PathLike]
) -> Path:
    from convcli.images import panel  # ImageDraw and fonts: only for a panel

    shown = to_display(volume, "clip")
    # x and y on one scale, zero mid-grey, so their strengths compare; None only if all is zero
    ref = display_reference(maps.magnitude)
    magnitude = to_display(maps.magnitude, options.scale, ref if options.scale == "abs" else None)
    assert maps.gx is not None  # edge_maps keeps the components for a panel
    if filt.y is None:
        tiles = [shown, to_display(maps.gx, "offset", ref), magnitude]
        labels = ["input", f"{filt.x.name} response", f"|{filt.x.name}|"]
        references = [None, ref, None]
    else:
        assert maps.gy is not None
        tiles = [shown, to_display(maps.gx, "offset", ref), to_display(maps.gy, "offset", ref), magnitude]
        labels = ["input", f"{filt.x.name} (x)", f"{filt.y.name} (y)", f"{filt.name} magnitude"]
        references = [None, ref, ref, None]
    return write_image(path, panel.panel(tiles, labels, references=references), inputs=inputs)
