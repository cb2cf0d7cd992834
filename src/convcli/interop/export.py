"""The one core call behind ``convcli export``: a checkpoint or a spec, written as an ONNX file or
as a PyTorch module.

Every check runs before any work: the output's suffix picks the format (`FORMATS`), the
format's package must be importable, the path must be writable and not the input; then the
source is read (a checkpoint with finite weights, or a spec) and every layer must be
exportable. Only then is the model built (the checkpoint's weights, or random ones drawn as
``convcli train`` starts), turned into nodes (`convcli.interop.layers`) and written atomically.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from convcli.errors import InputError, OutputError
from convcli.interop import layers as X
from convcli.outputs import atomic_write, check_output_path

# suffix -> (format, the package its writer needs, the extra that installs it)
FORMATS = {".onnx": ("onnx", "onnx", "onnx"), ".py": ("pytorch", None, None)}


@dataclass(frozen=True)
class ExportRequest:
    """``words`` name a checkpoint (``.npz``) or a spec; ``seed`` draws a spec's weights."""

    words: tuple[str, ...]
    output: Path
    seed: int | None = None


@dataclass(frozen=True)
class ExportResult:
    """The file written and what is in it; ``nodes`` counts the ONNX graph's nodes (0 for a module)."""

    output: Path
    format: str
    net: X.Exported
    nodes: int = 0
    opset: int | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        """What a user should know that the file does not shout: random weights, a dropped softmax."""
        notes = []
        if self.net.seed is not None:
            if self.format == "pytorch":
                notes.append(
                    f"note: {self.net.source} is a spec, not a checkpoint: {self.output.name} holds the "
                    "architecture; Net() has PyTorch's initial weights, Net.from_checkpoint(FILE.npz) loads "
                    "a checkpoint of this network"
                )
            else:
                notes.append(f"note: the weights are {self.net.weights}")
        if self.net.softmax_dropped:
            notes.append("note: the network's final softmax is left out: the output is the logits")
        if self.format == "pytorch" and not self.output.stem.isidentifier():
            notes.append(f"note: '{self.output.stem}' is not a Python module name: rename the file to import it")
        return tuple(notes)


def check_output(output: Path, inputs: list[str]) -> str:
    """The format ``output`` asks for, once its package is importable and the path is safe."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(
            f"-o {output}: export writes .onnx (an ONNX model) or .py (a PyTorch module); end the name in one of them"
        )
    fmt, package, extra = FORMATS[suffix]
    if package is not None:
        try:
            importlib.import_module(package)
        except ImportError:
            raise OutputError(
                f'writing {suffix} files needs the {package} package: pip install "convcli[{extra}]"'
            ) from None
    check_output_path(output, inputs, label="-o")
    return fmt


def export(r: ExportRequest) -> ExportResult:
    """Write the model ``r.words`` names to ``r.output``; see ``convcli export``."""
    checkpoint = Path(r.words[0]) if len(r.words) == 1 and Path(r.words[0]).suffix.lower() == ".npz" else None
    inputs = list(r.words[:1])  # a checkpoint or a spec file, never overwritten
    fmt = check_output(r.output, inputs)
    if fmt == "onnx":
        from convcli.interop import onnx_out

        net = exported(r.words, checkpoint, r.seed, max_bytes=onnx_out.MAX_BYTES)
        model = onnx_out.onnx_model(net)
        _write(r.output, model.SerializeToString(), inputs)
        return ExportResult(r.output, fmt, net, nodes=len(model.graph.node), opset=onnx_out.OPSET)
    from convcli.interop.torch_out import torch_source

    net = exported(r.words, checkpoint, r.seed)
    weights = _relative(checkpoint, r.output) if checkpoint else None
    _write(r.output, torch_source(net, weights, r.output.stem).encode(), inputs)
    return ExportResult(r.output, fmt, net)


def exported(
    words: tuple[str, ...], checkpoint: Path | None, seed: int | None, max_bytes: int | None = None
) -> X.Exported:
    """The nodes and input preparation of a checkpoint's trained model, or of a spec's model with
    weights drawn by ``seed`` (default 0, as `convcli.training.run.train` draws them); refused if
    its float32 arrays take more than ``max_bytes``."""
    from convcli.networks.words import format_network

    if checkpoint is not None:
        if seed is not None:
            raise InputError(f"--seed {seed} draws the weights of a spec; {checkpoint} is a checkpoint and has its own")
        model, prepare = _trained(checkpoint, max_bytes)
    else:
        seed = 0 if seed is None else seed
        model, prepare = _random(words, seed, max_bytes)
    network = model.report.network
    return X.Exported(
        network=network,
        words=format_network(network),
        layers=X.export_layers(model.report, model),
        **prepare,
        n_params=model.n_params(),
        softmax_dropped=X.ends_in_softmax(model.report),
        source=str(checkpoint) if checkpoint else " ".join(words),
        seed=seed,
    )


def _trained(checkpoint: Path, max_bytes: int | None):
    """The checkpoint's model, and the preparation of the images it was trained on."""
    from convcli.training.loop import input_padding
    from convcli.training.trained import load_model

    model, saved = load_model(checkpoint)
    X.check_exportable(model.report, max_bytes)
    data = saved.meta.data
    prepare = {
        "image": data.image_shape,
        "pad": input_padding(data.image_shape, saved.network.input),
        "mean": data.mean,
        "std": data.std,
        "class_names": data.class_names,
    }
    return model, prepare


def _random(words: tuple[str, ...], seed: int, max_bytes: int | None):
    """The spec's model with the weights `convcli train --seed` would start from; images of the
    network's input size, used as they are."""
    from convcli.networks.report import analyse
    from convcli.nn.model import build_model
    from convcli.training.run import load_spec

    report = analyse(load_spec(words))
    X.check_exportable(report, max_bytes)
    model = build_model(report, seed=seed)
    model.eval()
    h, w, c = report.network.input
    return model, {"image": (c, h, w), "pad": 0, "mean": None, "std": None, "class_names": ()}


def _write(output: Path, data: bytes, inputs: list[str]) -> None:
    def write(f: BinaryIO) -> None:
        f.write(data)

    atomic_write(output, write, inputs)


def _relative(path: Path, output: Path) -> str:
    """``path`` as the module file at ``output`` finds it: relative to the file's folder."""
    try:
        return Path(os.path.relpath(path.resolve(), output.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.resolve().as_posix()
