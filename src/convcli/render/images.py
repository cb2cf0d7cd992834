"""Printing the image commands' results: edges summaries, conv/pool matrices and summaries, the
kernel list, and the progress bar of a many-file edges run.

Data goes to stdout (a table, a matrix or JSON); notes, sizes and per-file errors go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, redirect_stdout

from convcli.render.emit import Column, Table, emit, emit_json, emit_table, note, warn

PROGRESS_ABOVE = 3
"""A progress bar appears for more files than this, when stderr is a terminal."""


def _summary_stream(outputs: Iterable) -> AbstractContextManager:
    """Send what would go to stdout to stderr when an image was written to stdout (``-o -``)."""
    from convcli.images.write import STDOUT

    return redirect_stdout(sys.stderr) if any(str(p) == STDOUT for p in outputs) else nullcontext()


@contextmanager
def progress(total: int, what: str = "edges") -> Iterator[Callable]:
    """Yield ``on_file(result)``: prints the file's notes and error on stderr and advances a rich
    progress bar (transient, on stderr) when there are many files and stderr is a terminal."""
    if total <= PROGRESS_ABOVE or not sys.stderr.isatty():
        yield lambda result: _report_file(result, note)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from convcli.render.emit import console

    out = console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out, transient=True) as bar:
        task = bar.add_task(what, total=total)

        def on_file(result) -> None:
            _report_file(result, lambda text: out.print(text, markup=False, highlight=False))
            bar.advance(task)

        yield on_file


def _report_file(result, say: Callable[[str], None]) -> None:
    for text in result.notes:
        say(text)
    if result.error:
        say(f"Error: {result.error}")


def _number(value: float) -> str:
    return f"{value:.4g}"


def _range(low: float, high: float) -> str:
    return f"{_number(low)} .. {_number(high)}"


def edges_dict(result) -> dict:
    """One edges result as the JSON object documented for ``convcli edges --json``."""
    c, h, w = result.shape or (None, None, None)
    return {
        "file": str(result.path),
        "height": h,
        "width": w,
        "channels": c,
        "filter": result.filter,
        "range": None if result.error else [result.low, result.high],
        "seconds": round(result.seconds, 4),
        "output": str(result.outputs[0]) if result.outputs else None,
        "outputs": [str(p) for p in result.outputs],
        "notes": list(result.notes),
        "error": result.error,
    }


def show_edges(results: list, json_out: bool) -> None:
    """A summary table (or a JSON list) of an edges run, one row per input file; on stderr when
    the image went to stdout."""
    with _summary_stream(p for r in results for p in r.outputs):
        _show_edges(results, json_out)


def _show_edges(results: list, json_out: bool) -> None:
    if json_out:
        emit_json([edges_dict(r) for r in results])
        return
    failed = sum(1 for r in results if r.error)
    if failed == len(results):  # nothing to summarise: the errors are on stderr already
        return
    table = Table(
        [
            ("file", "left"),
            Column("size (H x W x C)", "right", drop=3),
            Column("filter", drop=4),
            Column("response range", "right", drop=2),
            Column("time", "right", drop=1),
            Column("output", wrap=True),
        ]
    )
    for r in results:
        if r.error:
            table.rows.append([str(r.path), "-", r.filter, "-", f"{r.seconds:.2f} s", "failed (see above)"])
            table.dim_rows.add(len(table.rows) - 1)
            continue
        size = _hwc(r.shape)
        table.rows.append(
            [
                str(r.path),
                size,
                r.filter,
                _range(r.low, r.high),
                f"{r.seconds:.2f} s",
                ", ".join(str(p) for p in r.outputs),
            ]
        )
    emit_table(table)
    if failed:
        note(f"{failed} of {len(results)} files failed")


def _hwc(shape: tuple[int, ...]) -> str:
    """A ``(C, H, W)`` array's shape in the notation of every table: ``300 x 451 x 3``."""
    c, h, w = shape
    return f"{h} x {w} x {c}"


def _pair(values: tuple[int, int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"{values[0]} x {values[1]}"


def _size_line(result) -> str:
    """``conv: 6 x 6 -> 4 x 4 (window 3 x 3, stride 1, padding 0)``, H x W as shape-calc gives them."""
    g = result.geometry
    top, bottom, left, right = g.pads
    pads = f"{top}" if top == bottom == left == right else f"{top}+{bottom} x {left}+{right}"
    dilation = "" if (g.dh, g.dw) == (1, 1) else f", dilation {_pair((g.dh, g.dw))}"
    return (
        f"{result.operation}: {g.h} x {g.w} -> {g.oh} x {g.ow} (window {g.fh} x {g.fw}, "
        f"stride {_pair((g.sh, g.sw))}, padding {pads}{dilation})"
    )


def _plain(values, integer: bool):
    """Nested lists for JSON: ints when the result is integer and whole, else floats."""
    import numpy as np

    if integer and np.all(np.mod(values, 1) == 0):
        return values.astype(np.int64).tolist()
    return values.tolist()


def show_filtered(result, json_out: bool) -> None:
    """A conv/pool result: a matrix (printed, or ``{"output", "shape"}``) or an image summary;
    on stderr when the image went to stdout."""
    with _summary_stream(result.outputs):
        _show_filtered(result, json_out)


def _show_filtered(result, json_out: bool) -> None:
    from convcli.images.matrix import format_matrix

    for text in result.source.notes:
        note(text)
    g = result.geometry
    if any(g.dropped):
        lost = [f"{n} {what}" for n, what in zip(g.dropped, ("row(s) at the bottom", "column(s) at the right")) if n]
        warn(f"{' and '.join(lost)} covered by no window: (n + 2p - f) is not a multiple of the stride")
    image = result.source.path is not None and result.outputs
    if not image:
        values = result.output.reshape(result.matrix_shape)
        note(_size_line(result))
        for path in result.outputs:
            note(f"wrote {path}")
        if json_out:
            emit_json({"output": _plain(values, result.integer), "shape": list(values.shape)})
        else:
            emit(format_matrix(values, result.integer))
        return
    c, h, w = result.source.array.shape
    summary = {
        "input": result.source.name,
        "input_shape": [c, h, w],
        "operation": result.operation,
        "kernels": list(result.labels),
        "output_shape": list(result.output.shape),
        "range": [float(result.output.min()), float(result.output.max())],
        "scale": list(result.scales),
        "outputs": [str(p) for p in result.outputs],
        "dropped": list(g.dropped),
    }
    if json_out:
        emit_json(summary)
        return
    note(_size_line(result))
    table = Table(
        [
            ("input", "left"),
            Column("size (H x W x C)", "right", drop=4),
            Column(result.operation, wrap=True),
            Column("output size", "right", drop=3),
            Column("range", "right", drop=1),
            Column("scale", wrap=True, drop=2),
            Column("output", wrap=True),
        ]
    )
    table.rows.append(
        [
            result.source.name,
            _hwc(result.source.array.shape),
            ", ".join(result.labels),
            _hwc(result.output.shape),
            _range(*summary["range"]),
            ", ".join(result.scales),
            ", ".join(summary["outputs"]),
        ]
    )
    emit_table(table)


def kernel_dicts(kernels) -> list[dict]:
    return [
        {
            "name": k.name,
            "shape": list(k.shape),
            "matrix": [list(row) for row in k.matrix],
            "kind": k.kind,
            "description": k.description,
            "sign": k.sign,
            "partner": k.partner,
            "source": k.source,
        }
        for k in kernels
    ]


def show_kernels(kernels, json_out: bool) -> None:
    """The kernel registry: name, matrix, kind, description and sign convention."""
    if json_out:
        emit_json(kernel_dicts(kernels))
        return
    table = Table(
        [
            ("name", "left"),
            Column("matrix", wrap=True),
            Column("kind", drop=2),
            Column("description", wrap=True),
            Column("sign convention", wrap=True, drop=1),
        ],
        title="Kernels (applied by cross-correlation; --flip for true convolution)",
    )
    for k in kernels:
        table.rows.append([k.name, matrix_text(k), k.kind, k.description, k.sign])
    emit_table(table)


def matrix_text(kernel) -> str:
    """A kernel's matrix on one line, ``[1 0 -1; 2 0 -2; 1 0 -1]``; a large separable one as the
    outer product of its factors, with exact fractions.

    >>> from convcli.images.kernels import KERNELS
    >>> matrix_text(KERNELS["box"]), matrix_text(KERNELS["gaussian-5"])
    ('[1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9]', 'outer([1/16 1/4 3/8 1/4 1/16], [1/16 1/4 3/8 1/4 1/16])')
    """
    if kernel.factors is not None and len(kernel.matrix) * len(kernel.matrix[0]) > 9:
        col, row = (" ".join(map(_cell, f)) for f in kernel.factors)
        return f"outer([{col}], [{row}])"
    return "[" + "; ".join(" ".join(map(_cell, row)) for row in kernel.matrix) + "]"


def _cell(value: float) -> str:
    from fractions import Fraction

    return str(Fraction(value).limit_denominator(1000))
