"""edges, conv and pool: the image commands. numpy and Pillow are imported inside the commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from convcli.cli.options import (
    AutoScale,
    Border,
    Channels,
    JsonOpt,
    MaxPixelsOpt,
    OutputOpt,
    PaddingOpt,
    PoolMode,
    Scale,
    command_app,
    usage_error,
)

app = command_app()

BitDepthOpt = typer.Option(8, "--bit-depth", help="8 or 16 bits per sample for PNG output (16: one channel).")
ChannelsOpt = typer.Option(Channels.gray, "--channels", help="gray (Rec.601) or rgb (each channel on its own).")


def one_blas_thread() -> None:
    """Start numpy's OpenBLAS with one thread, for a command that does no linear algebra.

    Loaded with numpy, OpenBLAS starts a thread per core, and each spins for a while waiting for
    work: on a 2-core machine about 30 ms of CPU that edge detection's own threads
    (`convcli.ops.bands`) would use (benchmarks/bench_edges.py). A user's OPENBLAS_NUM_THREADS
    stands, and once numpy is loaded (convcli called in-process) nothing changes.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _common(bit_depth: int, max_pixels: int | None) -> dict:
    if bit_depth not in (8, 16):
        raise usage_error(f"--bit-depth {bit_depth}: choose 8 or 16")
    if max_pixels is not None and max_pixels < 1:
        raise usage_error(f"--max-pixels {max_pixels}: must be positive")
    return {"bit_depth": bit_depth} | ({"max_pixels": max_pixels} if max_pixels else {})


@app.command()
def edges(
    images: list[Path] = typer.Argument(
        ..., metavar="IMAGE...", show_default=False, help="PNG, JPEG, BMP, TIFF, WebP, GIF or PPM files; - reads stdin."
    ),
    filter_name: str = typer.Option(
        "sobel",
        "--filter",
        "-f",
        metavar="NAME",
        help="sobel, scharr, prewitt, roberts, vertical (either half of a "
        "pair names the pair), or a single kernel: laplacian, laplacian-8.",
    ),
    panel: bool = typer.Option(False, "--all", help="Also write <out>_panel.png: input | x | y | magnitude, labelled."),
    orientation: bool = typer.Option(
        False, "--orientation", help="Also write <out>_orientation.png: direction as hue, strength as brightness."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", "-t", metavar="T", help="Write a binary edge map: magnitude >= T x the maximum (0-1)."
    ),
    scale: Scale = typer.Option(
        Scale.abs,
        "--scale",
        help="8/16-bit mapping. abs: magnitude / its 99.5th percentile (the "
        "strongest 0.5% white); minmax: the exact range; offset: zero "
        "mid-grey; clip: raw values cut to [0, 1].",
    ),
    channels: Channels = ChannelsOpt,
    mode: Border = typer.Option(Border.reflect, "--mode", help="Border mode (reflect: OpenCV's default)."),
    bit_depth: int = BitDepthOpt,
    max_pixels: int | None = MaxPixelsOpt,
    output: str | None = OutputOpt,  # str: a trailing slash (DIR/) must reach the core
    json_out: bool = JsonOpt,
) -> None:
    """Edge maps of images: Sobel gradient magnitude by default, written as <stem>_edges.png.

    Each IMAGE is converted to grey (--channels rgb: each channel filtered and written as
    colour), filtered with an x/y kernel pair, and sqrt(gx^2 + gy^2) written next to it, or into
    -o DIR, or to -o FILE for one input (.tif/.npy keep exact float32 values), or as PNG to
    stdout with -o - (the summary then goes to stderr). A summary table (size, filter, response
    range, time, output) goes to stdout. No output may be an input; all are checked first. If one
    file fails, its error is printed, the others are still processed, and the exit code is 1.

    \b
    Examples:
      convcli edges sample_images/chelsea.png
      convcli edges photo.jpg --all --orientation       # panel and direction map too
      convcli edges photo.jpg --filter scharr -o scharr.tif
      convcli edges *.jpg -o edges/ --threshold 0.25 --json | jq '.[].output'
      cat photo.jpg | convcli edges - -o - | convcli pool - --size 4 -o small.png
    """
    one_blas_thread()
    from convcli.images.edges import EdgeOptions, detect_edges
    from convcli.render import images as render

    options = EdgeOptions(
        filter=filter_name,
        channels=channels.value,
        mode=mode.value,
        scale=scale.value,
        threshold=threshold,
        orientation=orientation,
        panel=panel,
        **_common(bit_depth, max_pixels),
    )
    with render.progress(len(images)) as on_file:
        results = detect_edges(images, options, output, on_file)
    render.show_edges(results, json_out)
    if any(r.error for r in results):
        raise typer.Exit(1)


# A typed matrix may start with a minus sign: "-1,0;0,1" is an argument, not an option.
MATRIX_ARGS = {"ignore_unknown_options": True}


@app.command(context_settings=MATRIX_ARGS)
def conv(
    source: str | None = typer.Argument(
        None,
        metavar="INPUT",
        show_default=False,
        help="An image, a .npy/.csv/.txt matrix, - (stdin: an image or a matrix) or a typed matrix "
        "such as '3,0,1;1,5,8;2,7,2'.",
    ),
    kernels: list[str] | None = typer.Option(
        None,
        "--kernel",
        "-k",
        metavar="K",
        help="A kernel name (see --list-kernels), a typed matrix or a matrix file; repeat for a stack.",
    ),
    padding: str = PaddingOpt,
    mode: Border = typer.Option(Border.zeros, "--mode", help="What the padding holds."),
    stride: int = typer.Option(1, "--stride", "-s", help="Stride."),
    dilation: int = typer.Option(1, "--dilation", "-d", help="Dilation."),
    flip: bool = typer.Option(
        False, "--flip", help="Flip the kernel: true convolution (scipy) instead of cross-correlation (CNNs)."
    ),
    channels: Channels = ChannelsOpt,
    scale: AutoScale = typer.Option(
        AutoScale.auto,
        "--scale",
        help="8/16-bit mapping; auto: offset (zero mid-grey) if signed, clip if in [0, 1], else minmax.",
    ),
    bit_depth: int = BitDepthOpt,
    max_pixels: int | None = MaxPixelsOpt,
    output: str | None = OutputOpt,
    list_kernels: bool = typer.Option(False, "--list-kernels", help="List the named kernels and exit."),
    animate: str | None = typer.Option(
        None,
        "--animate",
        metavar="FILE",
        help="A matrix with one kernel: draw the window, its products and their sum at every output "
        "position, as a .gif or a .png sheet of frames.",
    ),
    frames: int | None = typer.Option(
        None, "--frames", metavar="N", help="With --animate: at most N frames, spread over the output positions."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Convolve an image or a matrix with one or more kernels (cross-correlation, as CNNs do).

    A matrix input prints the result (integers stay integers) and its size on stderr; --json
    gives {"output": [[...]], "shape": [...]}. An image input writes <stem>_<kernel>.png next
    to it (one file per kernel; -o FILE.tif or .npy keeps the whole stack exactly; -o - writes a
    PNG to stdout and the summary to stderr) and prints a summary. No output may be an input or a
    kernel file. A 2-D kernel filters each channel; a kernel with channels ('a;b|c;d|...') sums
    them.

    \b
    Examples:
      convcli conv "10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0" --kernel vertical
      convcli conv "3,0,1;1,5,8;2,7,2" --kernel "1,0;0,-1" --padding 1 --json
      convcli conv photo.png --kernel sobel-x --kernel sobel-y -o responses.tif
      convcli conv "10,10,10,0,0,0;10,10,10,0,0,0;10,10,10,0,0,0" --kernel vertical --animate conv.gif
      convcli conv --list-kernels
    """
    from convcli.render import images as render

    if list_kernels:
        from convcli.images.kernels import KERNELS

        render.show_kernels(list(KERNELS.values()), json_out)
        return
    if source is None:
        raise usage_error("give an INPUT (an image, a matrix file, - or a typed matrix), or --list-kernels")
    if frames is not None and animate is None:
        raise usage_error("--frames goes with --animate")
    from convcli.images.convpool import ConvSettings, convolve
    from convcli.shapes import parse_padding

    settings = ConvSettings(
        padding=parse_padding(padding),
        mode=mode.value,
        stride=stride,
        dilation=dilation,
        flip=flip,
        channels=channels.value,
        scale=scale.value,
        animate=animate,
        frames=frames,
        **_common(bit_depth, max_pixels),
    )
    render.show_filtered(convolve(source, kernels or [], settings, output), json_out)


@app.command(context_settings=MATRIX_ARGS)
def pool(
    source: str = typer.Argument(
        ..., metavar="INPUT", show_default=False, help="An image, a .npy/.csv/.txt matrix, - (stdin) or a typed matrix."
    ),
    mode: PoolMode = typer.Option(PoolMode.max, "--mode", help="max or avg."),
    size: int | None = typer.Option(None, "--size", "-f", show_default=False, help="Window size [default: 2]."),
    stride: int | None = typer.Option(
        None, "--stride", "-s", show_default=False, help="Stride [default: the window size]."
    ),
    padding: str = PaddingOpt,
    ceil: bool = typer.Option(False, "--ceil", help="Keep a last partial window (PyTorch ceil_mode)."),
    count_pad: bool = typer.Option(
        True,
        "--count-pad/--no-count-pad",
        help="avg: divide by the whole window, padding included (PyTorch's default).",
    ),
    global_pool: bool = typer.Option(False, "--global", help="One value per channel (global pooling)."),
    channels: Channels = ChannelsOpt,
    scale: AutoScale = typer.Option(AutoScale.auto, "--scale", help="8/16-bit mapping (auto: clip for images)."),
    bit_depth: int = BitDepthOpt,
    max_pixels: int | None = MaxPixelsOpt,
    output: str | None = OutputOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Max or average pooling of an image (each channel) or a matrix.

    Same inputs and outputs as conv: a matrix is printed (--json: {"output", "shape"}), an image
    is written as <stem>_maxpool.png (or _avgpool) with a summary. The output size, reported on
    stderr, is shape-calc's: floor((n + 2p - f)/s) + 1, or ceil with --ceil.

    \b
    Examples:
      convcli pool "1,3,2,1;2,9,1,1;1,3,2,3;5,6,1,2" --size 2
      convcli pool "1,3,2,1;2,9,1,1;1,3,2,3;5,6,1,2" --size 2 --mode avg --json
      convcli pool photo.png --size 4 --mode avg -o small.png
      convcli pool features.npy --global --mode avg
    """
    from convcli.images.convpool import PoolSettings
    from convcli.images.convpool import pool as run_pool
    from convcli.render import images as render
    from convcli.shapes import parse_padding

    settings = PoolSettings(
        size=size,
        stride=stride,
        padding=parse_padding(padding),
        ceil=ceil,
        mode=mode.value,
        count_pad=count_pad,
        global_pool=global_pool,
        channels=channels.value,
        scale=scale.value,
        **_common(bit_depth, max_pixels),
    )
    render.show_filtered(run_pool(source, settings, output), json_out)
