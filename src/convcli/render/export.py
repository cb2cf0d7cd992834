"""What ``convcli export`` prints: the file written, its input and output, where the weights
come from; notes (random weights, a dropped softmax) on stderr."""

from __future__ import annotations

from convcli.render.emit import count, emit, emit_json, note


def export_dict(result) -> dict:
    net = result.net
    return {
        "output": str(result.output),
        "format": result.format,
        "opset": result.opset,
        "nodes": result.nodes or None,
        "network": net.words,
        "params": net.n_params,
        "input": {"name": "image", "shape": ["N", *net.image], "dtype": "float32"},
        "output_tensor": {"name": "logits", "shape": ["N", net.n_outputs]},
        "padding": net.pad,
        "normalisation": {"mean": net.mean, "std": net.std} if net.normalised else None,
        "class_names": list(net.class_names),
        "weights": "random" if net.seed is not None else "trained",
        "seed": net.seed,
        "source": net.source,
    }


def show_export(result, json_out: bool) -> None:
    for line in result.notes:
        note(line)
    if json_out:
        emit_json(export_dict(result))
        return
    net = result.net
    what = (
        f"ONNX opset {result.opset}, {result.nodes} nodes" if result.format == "onnx" else "PyTorch module, class Net"
    )
    emit(f"wrote {result.output}: {what}, {count(net.n_params)} parameters")
    emit(f"  input   image  N x {' x '.join(map(str, net.image))} float32, {net.preparation}")
    emit(f"  output  logits N x {net.n_outputs}")
    emit(f"  weights {net.weights}")
