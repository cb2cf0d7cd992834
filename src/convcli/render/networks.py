"""Printing network reports: the shape-calc, params and flops tables and their shared JSON object."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convcli.networks.costs import EXTRA_KINDS
from convcli.render.emit import Column, Table, count, emit_json, emit_table, human, warn

if TYPE_CHECKING:
    from convcli.networks.report import LayerInfo, Report


def counted(include: frozenset[str]) -> str:
    """The sentence that says exactly what the FLOPs figure counts."""
    extra = "".join(f" + {EXTRA_KINDS[k]}" for k in sorted(include))
    return (
        "MACs: multiply-accumulates of conv, convT and fc layers (torchvision's 'GFLOPS' and "
        f"ptflops' 'GMac' count these). FLOPs = 2 x MACs{extra}."
    )


def _flops(info: LayerInfo, include: frozenset[str]) -> int:
    return 2 * info.macs + sum(info.extra.get(k, 0) for k in include)


def _layer_dict(index: int, info: LayerInfo, keras: bool, include: frozenset[str]) -> dict:
    fld = info.field
    item = {
        "index": index,
        "word": info.word,
        "kind": info.kind,
        "input_shape": list(info.in_shape),
        "output_shape": list(info.out_shape),
        "activations": info.activations,
        "params": info.params + info.frozen + (info.buffers if keras else 0),
        "trainable_params": info.params,
        "macs": info.macs,
        "flops": _flops(info, include),
        "receptive_field": fld.r if fld else None,
        "jump": fld.j if fld else None,
        "start": fld.start if fld else None,
        "warnings": list(info.warnings),
    }
    if info.children:
        item["children"] = [
            {"branch": name, "layers": [_layer_dict(i, c, keras, include) for i, c in enumerate(branch, 1)]}
            for name, branch in info.children
        ]
    return item


def report_dict(report: Report, keras: bool = False, include: frozenset[str] = frozenset()) -> dict:
    """The one JSON object shape-calc, params and flops all print (documented in the README)."""
    trainable = report.total("params")
    non_trainable = report.total("frozen") + (report.total("buffers") if keras else 0)
    flatten = next((i.out_shape[0] for i in report.layers if i.kind == "flatten"), None)
    return {
        "name": report.network.name or None,
        "input": list(report.input_shape),
        "output_shape": list(report.output_shape),
        "flatten_size": flatten,
        "convention": "keras" if keras else "pytorch",
        "layers": [_layer_dict(i, info, keras, include) for i, info in enumerate(report.layers, 1)],
        "total": {
            "params": trainable + non_trainable,
            "trainable_params": trainable,
            "non_trainable_params": non_trainable,
            "macs": report.total("macs"),
            "flops": 2 * report.total("macs") + report.extra(include),
            "activations": sum(i.activations for i in report.layers),
        },
        "flops_counted": counted(include),
        "warnings": list(report.warnings),
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
    flatten = next((i.out_shape[0] for i in report.layers if i.kind == "flatten"), None)
    if flatten is not None:
        table.footer.append(f"flatten size: {flatten:,}")
    emit_table(table)
    _warnings(report)


def show_params(report: Report, keras: bool = False, expand: bool = False) -> None:
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
            row.append(count(info.frozen + (info.buffers if keras else 0)))
        table.rows.append(row)
        if depth:
            table.dim_rows.add(len(table.rows) - 1)
    data = report_dict(report, keras)["total"]
    table.footer += [
        f"trainable params: {count(data['trainable_params'])}",
        f"non-trainable params: {count(data['non_trainable_params'])}"
        + (
            ""
            if keras
            else " (batch norm running statistics not counted; --keras counts them)"
            if report.total("buffers")
            else ""
        ),
        f"total params: {count(data['params'])} ({human(data['params'])})",
    ]
    emit_table(table)


def show_flops(report: Report, include: frozenset[str], expand: bool = False) -> None:
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
        table.rows.append([index, word, _shape(info.out_shape), count(info.macs), count(_flops(info, include))])
        if depth:
            table.dim_rows.add(len(table.rows) - 1)
    macs = report.total("macs")
    flops = 2 * macs + report.extra(include)
    table.footer += [
        f"total MACs: {count(macs)} ({human(macs)} MACs)",
        f"total FLOPs: {count(flops)} ({human(flops)} FLOPs)",
        counted(include),
    ]
    emit_table(table)


def emit_report_json(report: Report, keras: bool = False, include: frozenset[str] = frozenset()) -> None:
    emit_json(report_dict(report, keras, include))


def show_axis(n, f, s, padding, d, result, *, pool, ceil, transposed, output_padding, json_out) -> None:
    """One layer on one axis: the bare number when piped, the formula with numbers on a terminal."""
    from convcli.shapes import effective_kernel

    stride = (f if pool else 1) if s is None else s
    f_eff = effective_kernel(f, d)
    if transposed:
        formula = (
            f"(n-1)s - 2p + d(f-1) + op + 1 = ({n}-1)*{stride} - 2*{result.p_lo} + {d}*({f}-1) "
            f"+ {output_padding} + 1 = {result.out}"
        )
    else:
        rounding = "ceil" if ceil else "floor"
        pad = f"2*{result.p_lo}" if result.p_lo == result.p_hi else f"{result.p_lo} + {result.p_hi}"
        kernel = f"{f}" if d == 1 else f"{f_eff}"
        formula = f"{rounding}(({n} + {pad} - {kernel}) / {stride}) + 1 = {result.out}"
        if d != 1:
            formula += f"   (dilated kernel f + (f-1)(d-1) = {f} + {f - 1}*{d - 1} = {f_eff})"
        if padding == "tf":
            formula += f"   (TensorFlow SAME: ceil({n}/{stride}), padding {result.p_lo} before, {result.p_hi} after)"
        if ceil and result.out != (n + result.p_lo + result.p_hi - f_eff) // stride + 1:
            formula += "   (ceil mode keeps the last partial window)"
    dropped = (
        f"(n + 2p - f) = {n + result.p_lo + result.p_hi - f_eff} is not a multiple of s={stride}: "
        f"the last {result.dropped} row(s)/column(s) are never covered"
        if result.dropped
        else None
    )
    if json_out:
        emit_json(
            {
                "n": n,
                "f": f,
                "s": stride,
                "p": [result.p_lo, result.p_hi],
                "d": d,
                "output": result.out,
                "dropped": result.dropped,
                "formula": formula,
            }
        )
        return
    from convcli.render.emit import emit, is_terminal

    emit(formula if is_terminal() else str(result.out))
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


def show_compare(reports: dict[str, Report], json_out: bool) -> None:
    """Variants of one design side by side, each priced against the first."""
    from convcli.networks.costs import separable_ratio

    names = list(reports)
    base = reports[names[0]]
    base_params, base_macs = base.total("params"), base.total("macs")
    data: dict = {"input": list(base.input_shape)}
    for name, report in reports.items():
        data[name] = {
            "params": report.total("params"),
            "macs": report.total("macs"),
            "ratio": report.total("macs") / base_macs,
            "params_ratio": report.total("params") / base_params,
            "layers": [step.word for step in report.network.steps],
            "output_shape": list(report.output_shape),
        }
    conv = base.network.steps[0].layer
    if "depthwise_separable" in data:
        data["depthwise_separable"]["closed_form"] = separable_ratio(conv.channels, conv.f)
        data["bottleneck"]["channels"] = reports["bottleneck"].network.steps[0].layer.channels
    if json_out:
        emit_json(data)
        return
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
    for name in names:
        d = data[name]
        table.rows.append(
            [name.replace("_", " "), " ".join(d["layers"]), count(d["params"]), count(d["macs"]), f"{d['ratio']:.4f}"]
        )
    if "depthwise_separable" in data:
        table.footer.append(
            f"closed form 1/C + 1/f^2 = 1/{conv.channels} + 1/{conv.f}^2 = "
            f"{data['depthwise_separable']['closed_form']:.5f} "
            f"(measured {data['depthwise_separable']['ratio']:.5f})"
        )
    emit_table(table)
