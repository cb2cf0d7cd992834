"""Checkpoints: one ``.npz`` holding a trained model and everything needed to use it again.

Arrays: ``param/<name>`` (weights and batch norm statistics, see `Model.state_dict`) and
``optim/<name>`` (optimiser state, for ``--resume``). One more entry, ``meta``, is a JSON
document stored as a numpy string: the format tag, convcli's version, the network spec (as JSON
layers, see `network_to_json`, and as words), normalisation mean/std, class names, the training
configuration and history. Nothing is pickled: files load with ``allow_pickle=False``.

Writes go through `convcli.outputs.atomic_write`, as every output does: a crash or Ctrl-C never
leaves a half-written checkpoint in place of a good one, and a new file follows the umask.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convcli import __version__
from convcli.errors import InputError, OutputError, SpecError
from convcli.networks import spec as S
from convcli.networks.words import format_layer, parse_layer
from convcli.outputs import PathLike, atomic_write, check_output_path

FORMAT = "convcli-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: model state, optimiser state and the metadata document."""

    state: dict[str, np.ndarray]
    optim: dict[str, np.ndarray]
    meta: dict

    @property
    def network(self) -> S.Network:
        return network_from_json(self.meta["spec"])


def check_output(path: Path, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse before any work is done if ``path`` cannot take a checkpoint or is one of ``inputs``
    (see `convcli.outputs.check_output_path`)."""
    check_output_path(path, inputs, label="--output")
    if path.suffix.lower() != ".npz":
        raise OutputError(f"--output {path}: a checkpoint is an .npz file; end the name in .npz")
    return path


def save(
    path: Path, state: dict[str, np.ndarray], optim: dict[str, np.ndarray], meta: dict, inputs: Iterable[PathLike] = ()
) -> Path:
    """Write a checkpoint atomically with `convcli.outputs.atomic_write`, never over one of ``inputs``."""
    arrays = {f"param/{k}": v for k, v in state.items()}
    arrays.update({f"optim/{k}": v for k, v in optim.items()})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "convcli_version": __version__, **meta}
    arrays["meta"] = np.array(json.dumps(doc))
    return atomic_write(path, lambda f: np.savez(f, **arrays), inputs)


def load(path: Path) -> Checkpoint:
    """Read a checkpoint written by `save`; `InputError` for anything else."""
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"checkpoint {path} is not a readable .npz file ({err})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(
            f"{path} is not a convcli checkpoint (no convcli metadata); train one with 'convcli train -o FILE.npz'"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"checkpoint {path} has format version {meta.get('format_version')}, "
            f"this convcli reads version {FORMAT_VERSION}"
        )
    state = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    try:
        network_from_json(meta["spec"])
    except (KeyError, SpecError, TypeError) as err:
        raise InputError(f"checkpoint {path}: its network spec cannot be read ({err})") from None
    return Checkpoint(state, optim, meta)


def network_to_json(network: S.Network) -> dict:
    """The network as ``{"input": [H, W, C], "layers": [...]}``: words, with containers as
    ``{"residual": {...}}`` and ``{"concat": [...]}`` (the spec-file syntax)."""
    return {
        "name": network.name,
        "input": list(network.input),
        "layers": [_layer_to_json(layer) for layer in network.layers],
    }


def network_from_json(doc: dict) -> S.Network:
    """Inverse of `network_to_json`."""
    layers = tuple(_layer_from_json(item) for item in doc["layers"])
    steps = tuple(S.Step(layer, format_layer(layer)) for layer in layers)
    return S.Network(tuple(doc["input"]), steps, doc.get("name", ""))


def spec_words(network: S.Network) -> str:
    """The network as one line of words (containers appear as 'residual'/'concat')."""
    return " ".join(["x".join(map(str, network.input))] + [format_layer(layer) for layer in network.layers])


def _layer_to_json(layer: S.Layer):
    if isinstance(layer, S.Residual):
        return {
            "residual": {
                "body": [_layer_to_json(x) for x in layer.body],
                "shortcut": None if layer.shortcut is None else [_layer_to_json(x) for x in layer.shortcut],
                "act": layer.act,
            }
        }
    if isinstance(layer, S.Concat):
        return {"concat": [[_layer_to_json(x) for x in branch] for branch in layer.branches]}
    word = format_layer(layer)
    # format_layer leaves out defaults; check the word reads back to the same layer
    if parse_layer(word) != layer:
        raise SpecError(f"layer {layer} does not round-trip through '{word}'")
    return word


def _layer_from_json(item) -> S.Layer:
    if isinstance(item, str):
        return parse_layer(item)
    if isinstance(item, dict) and "residual" in item:
        r = item["residual"]
        shortcut = None if r["shortcut"] is None else tuple(map(_layer_from_json, r["shortcut"]))
        return S.Residual(tuple(map(_layer_from_json, r["body"])), shortcut, r["act"])
    if isinstance(item, dict) and "concat" in item:
        return S.Concat(tuple(tuple(map(_layer_from_json, b)) for b in item["concat"]))
    raise SpecError(f"unreadable layer {item!r}")


def same_network(a: S.Network, b: S.Network) -> bool:
    """Same input and layers (names and words may differ)."""
    return a.input == b.input and a.layers == b.layers
