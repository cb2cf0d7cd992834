"""Printing network reports: the shape-calc, params and flops tables and their shared JSON object.

Every number printed here comes from the core's result (a `Report`, `Comparison` or `OneLayer`),
and the table and the JSON of a command are made from the same one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convcli.networks.costs import EXTRA_KINDS
from convcli.render.emit import Column, Table, count, emit, emit_json, emit_table, human, is_terminal, size, warn

if TYPE_CHECKING:
    from convcli.networks.compare import Comparison
    from convcli.networks.report import LayerInfo, Report
    from convcli.nn.memory import Memory
    from convcli.shapes import OneLayer


def counted(include: frozenset[str]) -> str:
    """The sentence that says exactly what the FLOPs figure counts."""
    extra = "".join(f" + {EXTRA_KINDS[k]}" for k in sorted(include))
    return (
        "MACs: multiply-accumulates of conv, convT and fc layers (torchvision's 'GFLOPS' and "
        f"ptflops' 'GMac' count these). FLOPs = 2 x MACs{extra}."
    )


def _layer_dict(report: Report, index: int, info: LayerInfo) -> dict:
    fld = info.field
    item = {
        "index": index,
        "word": info.word,
        "kind": info.kind,
        "input_shape": list(info.in_shape),
        "output_shape": list(info.out_shape),
        "activations": info.activations,
        "params": report.params(info),
        "trainable_params": info.params,
        "macs": info.macs,
        "flops": report.flops(info),
        "receptive_field": fld.r if fld else None,
        "jump": fld.j if fld else None,
        "start": fld.start if fld else None,
        "warnings": list(info.warnings),
    }
    if info.children:
        item["children"] = [
            {"branch": name, "layers": [_layer_dict(report, i, c) for i, c in enumerate(branch, 1)]}
            for name, branch in info.children
        ]
    return item


def report_dict(report: Report) -> dict:
    """The one JSON object shape-calc, params and flops all print (documented in the README)."""
    return {
        "name": report.network.name or None,
        "input": list(report.input_shape),
        "output_shape": list(report.output_shape),
        "flatten_size": report.flatten_size,
        "convention": "keras" if report.counting.keras else "pytorch",
        "layers": [_layer_dict(report, i, info) for i, info in enumerate(report.layers, 1)],
        "total": report.totals._asdict(),
        "flops_counted": counted(report.counting.include),
        "warnings": list(report.warnings),
        "unknown_operators": report.unknown_operators,
        "notes": list(report.network.notes),
    }


def _shape(shape: tuple) -> str:
    return " x ".join(map(str, shape))


def _rows(report: Report, expand: bool):
    """(index, word, info, depth) for every row of a table; inner block layers when ``expand``."""
    for i, info in enumerate(report.layers, 1):
        yield str(i), info.word, info, 0
        if expand:
            yield from _inner(str(i), info, 1)


def _inner(prefix: str, info: LayerInfo, depth: int):
    for name, branch in info.children:
        tag = name[0] if name.startswith(("body", "shortcut")) else name.split()[-1]
        for k, child in enumerate(branch, 1):
            index = f"{prefix}.{tag}{k}"
            yield index, "  " * depth + child.word, child, depth
            yield from _inner(index, child, depth + 1)


def _warnings(report: Report) -> None:
    from convcli.networks.report import walk

    for i, info in enumerate(report.layers, 1):
        for w in (w for inner in walk((info,)) for w in inner.warnings):
            warn(f"layer {i} '{info.word}': {w}")


def unknown_text(unknown: dict[str, int]) -> str:
    """The line that lists the operators counted as nothing.

    >>> unknown_text({"Resize": 2, "Einsum": 1})
    'unknown operators, counted as no parameters and no MACs: Resize x 2, Einsum x 1'
    """
    listed = ", ".join(f"{op} x {n}" for op, n in unknown.items())
    return f"unknown operators, counted as no parameters and no MACs: {listed}"


def _file_notes(report: Report, table: Table) -> None:
    """What the reader of a model file found (table footer), and its unknown operators (also stderr)."""
    table.footer += list(report.network.notes)
    if report.unknown_operators:
        table.footer.append(unknown_text(report.unknown_operators))
        warn(unknown_text(report.unknown_operators))


def _title(report: Report) -> str:
    name = f"{report.network.name}: " if report.network.name else ""
    return f"{name}input {_shape(report.input_shape)}"


def show_shapes(report: Report, expand: bool = False) -> None:
    table = Table(
        [
            ("#", "right"),
            ("layer", "left"),
            ("output", "right"),
            Column("activations", "right", drop=3),
            ("RF", "right"),
            Column("jump", "right", drop=2),
            Column("start", "right", drop=1),
        ],
        title=_title(report),
    )
    for index, word, info, depth in _rows(report, expand):
        fld = info.field
        table.rows.append(
            [
                index,
                word,
                _shape(info.out_shape),
                count(info.activations),
                str(fld.r) if fld else "-",
                str(fld.j) if fld else "-",
                f"{fld.start:g}" if fld else "-",
            ]
        )
        if depth:
            table.dim_rows.add(len(table.rows) - 1)
    table.footer.append(f"output: {_shape(report.output_shape)}")
    if report.flatten_size is not None:
        table.footer.append(f"flatten size: {count(report.flatten_size)}")
    _file_notes(report, table)
    emit_table(table)
    _warnings(report)


def show_params(report: Report, expand: bool = False) -> None:
    keras = report.counting.keras
    columns: list[Column | tuple[str, str]] = [
        ("#", "right"),
        ("layer", "left"),
        Column("output", "right", drop=1),
        ("params", "right"),
    ]
    if keras or report.total("frozen"):
        columns.append(("non-trainable", "right"))
    table = Table(columns, title=_title(report))
    for index, word, info, depth in _rows(report, expand):
        row = [index, word, _shape(info.out_shape), count(info.params)]
        if len(columns) == 5:
            row.append(count(report.non_trainable(info)))
        table.rows.append(row)
        if depth:
            table.dim_rows.add(len(table.rows) - 1)
    totals = report.totals
    uncounted = not keras and report.total("buffers")
    table.footer += [
        f"trainable params: {count(totals.trainable_params)}",
        f"non-trainable params: {count(totals.non_trainable_params)}"
        + (" (batch norm running statistics not counted; --keras counts them)" if uncounted else ""),
        f"total params: {count(totals.params)} ({human(totals.params)})",
    ]
    _file_notes(report, table)
    emit_table(table)


def memory_dict(report: Report, memory: Memory) -> dict:
    """The JSON of ``params --memory``, in bytes (documented in the README)."""
    from convcli.nn.memory import CONVENTION

    return {
        "name": report.network.name or None,
        "input": list(report.input_shape),
        "batch_size": memory.batch_size,
        "optimizer": memory.optimizer,
        "dtype": "float32",
        "convention": CONVENTION,
        "exact": memory.exact,
        "layers": [
            {
                "index": row.number,
                "path": row.path,
                "word": row.word,
                "depth": row.depth,
                "param_bytes": row.params,
                "activation_bytes": row.output,
                "cached_bytes": row.cached,
                "kept_bytes": row.kept,
                "optimizer_state_bytes": row.state,
                "transient_bytes": row.transient,
            }
            for row in memory.layers
        ],
        "total": {
            "weight_bytes": memory.weights,
            "gradient_bytes": memory.grads,
            "optimizer_state_bytes": memory.state,
            "input_bytes": memory.input,
            "activation_bytes": memory.activations,
            "kept_bytes": memory.kept,
            "transient_bytes": memory.transient,
            "inference_peak_bytes": memory.inference_peak,
            "training_peak_bytes": memory.training_peak,
        },
    }


def show_memory(report: Report, memory: Memory, expand: bool = False, json_out: bool = False) -> None:
    """``params --memory``: bytes per layer (the rows of blocks include their layers'), then the
    totals and the two peaks, with the conventions in the footer."""
    if json_out:
        emit_json(memory_dict(report, memory))
        return
    from convcli.nn.memory import CONVENTION

    table = Table(
        [
            ("#", "right"),
            ("layer", "left"),
            ("params", "right"),
            ("activations", "right"),
            ("kept for backward", "right"),
            Column("optimiser state", "right", drop=1),
        ],
        title=f"{_title(report)}, batch {memory.batch_size}, {memory.optimizer}",
    )
    for row in memory.layers:
        if row.depth and not expand:
            continue
        word = "  " * row.depth + row.word + ("" if row.exact else " *")
        table.rows.append([row.number, word, size(row.params), size(row.output), size(row.kept), size(row.state)])
        if row.depth:
            table.dim_rows.add(len(table.rows) - 1)
    table.footer += [
        f"weights {size(memory.weights)}, gradients {size(memory.grads)}, "
        f"{memory.optimizer} state {size(memory.state)}",
        f"activations {size(memory.activations)} (input included), kept for backward {size(memory.kept)}, "
        f"largest work arrays {size(memory.transient)}",
        f"inference peak {size(memory.inference_peak)}; training step peak {size(memory.training_peak)}",
        f"({CONVENTION}; batch {memory.batch_size})",
    ]
    if not memory.exact:
        table.footer.append("* a layer convcli cannot train: counted as keeping its input, as frameworks do")
    emit_table(table)


def show_flops(report: Report, expand: bool = False) -> None:
    table = Table(
        [
            ("#", "right"),
            ("layer", "left"),
            Column("output", "right", drop=2),
            ("MACs", "right"),
            Column("FLOPs", "right", drop=1),
        ],
        title=_title(report),
    )
    for index, word, info, depth in _rows(report, expand):
        table.rows.append([index, word, _shape(info.out_shape), count(info.macs), count(report.flops(info))])
        if depth:
            table.dim_rows.add(len(table.rows) - 1)
    totals = report.totals
    table.footer += [
        f"total MACs: {count(totals.macs)} ({human(totals.macs)} MACs)",
        f"total FLOPs: {count(totals.flops)} ({human(totals.flops)} FLOPs)",
        counted(report.counting.include),
    ]
    _file_notes(report, table)
    emit_table(table)


def emit_report_json(report: Report) -> None:
    if report.unknown_operators:
        warn(unknown_text(report.unknown_operators))
    emit_json(report_dict(report))


def axis_text(layer: OneLayer) -> tuple[str, str | None]:
    """The formula of one layer on one axis with its numbers, and the note when the floor drops
    rows and columns (else None): what shape-calc prints and what its animation captions."""
    n, f, s, d, lo, hi, out = layer.n, layer.f, layer.s, layer.d, layer.p_lo, layer.p_hi, layer.out
    if layer.kind == "convT":
        formula = (
            f"(n-1)s - 2p + d(f-1) + op + 1 = ({n}-1)*{s} - 2*{lo} + {d}*({f}-1) + {layer.output_padding} + 1 = {out}"
        )
    else:
        pad = f"2*{lo}" if lo == hi else f"{lo} + {hi}"
        formula = f"{'ceil' if layer.ceil else 'floor'}(({n} + {pad} - {layer.f_eff}) / {s}) + 1 = {out}"
        if d != 1:
            formula += f"   (dilated kernel f + (f-1)(d-1) = {layer.f_eff} for f={f}, d={d})"
        if layer.padding == "tf":
            formula += f"   (TensorFlow SAME: ceil({n}/{s}), padding {lo} before, {hi} after)"
        if layer.partial:
            formula += "   (ceil mode keeps the last partial window)"
    dropped = (
        f"(n + 2p - f) = {layer.span} is not a multiple of s={s}: "
        f"the last {layer.dropped} row(s)/column(s) are never covered"
        if layer.dropped
        else None
    )
    return formula, dropped


def show_axis(layer: OneLayer, json_out: bool) -> None:
    """One layer on one axis: the bare number when piped, the formula with numbers on a terminal."""
    formula, dropped = axis_text(layer)
    if json_out:
        emit_json(
            {
                "n": layer.n,
                "f": layer.f,
                "s": layer.s,
                "p": [layer.p_lo, layer.p_hi],
                "d": layer.d,
                "output": layer.out,
                "dropped": layer.dropped,
                "formula": formula,
            }
        )
        return
    emit(formula if is_terminal() else str(layer.out))
    if dropped:
        warn(dropped)


def show_zoo(rows: list[dict], json_out: bool) -> None:
    if json_out:
        emit_json(rows)
        return
    table = Table(
        [
            ("name", "left"),
            Column("input", "right", drop=2),
            ("params", "right"),
            ("MACs", "right"),
            Column("description", wrap=True),
            Column("as built by", wrap=True, drop=1),
        ],
        title="The zoo",
    )
    for r in rows:
        table.rows.append(
            [r["name"], _shape(tuple(r["input"])), count(r["params"]), human(r["macs"]), r["description"], r["source"]]
        )
    emit_table(table)


def compare_dict(comparison: Comparison) -> dict:
    """What ``flops compare --json`` prints: one entry per design, keyed by its name."""
    data: dict = {"input": list(comparison.variants[0].report.input_shape)}
    for v in comparison.variants:
        data[v.name] = {
            "params": v.report.total("params"),
            "macs": v.report.total("macs"),
            "ratio": v.ratio,
            "params_ratio": v.params_ratio,
            "layers": [step.word for step in v.report.network.steps],
            "output_shape": list(v.report.output_shape),
        }
    if comparison.closed_form is not None:
        data["depthwise_separable"]["closed_form"] = comparison.closed_form.ratio
    if comparison.bottleneck is not None:
        data["bottleneck"]["channels"] = comparison.bottleneck
    return data


def show_compare(comparison: Comparison, json_out: bool) -> None:
    """Variants of one design side by side, each priced against the first."""
    if json_out:
        emit_json(compare_dict(comparison))
        return
    base = comparison.variants[0].report
    table = Table(
        [
            Column("design", wrap=True),
            Column("layers", wrap=True),
            Column("params", "right", drop=1),
            ("MACs", "right"),
            ("MACs vs first", "right"),
        ],
        title=f"input {_shape(base.input_shape)} -> {_shape(base.output_shape)}",
    )
    for v in comparison.variants:
        table.rows.append(
            [
                v.name.replace("_", " "),
                " ".join(step.word for step in v.report.network.steps),
                count(v.report.total("params")),
                count(v.report.total("macs")),
                f"{v.ratio:.4f}",
            ]
        )
    closed = comparison.closed_form
    if closed is not None:
        table.footer.append(
            f"closed form 1/C + 1/f^2 = 1/{closed.c_out} + 1/{closed.f}^2 = {closed.ratio:.5f} "
            f"(measured {closed.measured:.5f})"
        )
    emit_table(table)
