"""The JSON spec syntax: one module reads it and writes it, for spec files and checkpoints alike.

A spec is ``{"name": ..., "input": "32x32x3", "layers": [...]}``; a layer is a word (the grammar of
:mod:`convcli.networks.words`), ``{"residual": {"body": [...], "shortcut": [...], "act": "relu"}}``
or ``{"concat": [[...], [...]]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convcli.errors import SpecError, did_you_mean
from convcli.networks import spec as S
from convcli.networks.words import format_layer, parse_layer, parse_shape


def parse_file(path: Path) -> S.Network:
    """A JSON spec file: ``{"name": ..., "input": "32x32x3", "layers": [...]}``.

    A layer is a word, ``{"residual": {"body": [...], "shortcut": [...], "act": "relu"}}`` or
    ``{"concat": [[...], [...]]}``, nested as deep as needed.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"spec file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec file '{path}': {getattr(err, 'strerror', None) or err}") from None
    except json.JSONDecodeError as err:
        raise SpecError(
            f"spec file '{path}' is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    if not isinstance(doc, dict) or "input" not in doc or "layers" not in doc:
        raise SpecError(f'spec file \'{path}\' needs an object with "input" and "layers"')
    shape = doc["input"]
    if isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) for v in shape):
        shape = "x".join(map(str, shape))
    if not isinstance(shape, str):
        raise SpecError(f'spec file \'{path}\': "input" must be "HxWxC" or [H, W, C]')
    layers = _layer_list(doc["layers"], "layers")
    if not layers:
        raise SpecError(f"spec file '{path}': \"layers\" is empty")
    steps = tuple(S.Step(layer, _describe(item)) for layer, item in zip(layers, doc["layers"]))
    return S.Network(parse_shape(shape), steps, name=str(doc.get("name", Path(path).stem)), source=str(path))


def _layer_list(items: Any, where: str) -> tuple:
    if not isinstance(items, list):
        raise SpecError(f"{where} must be a list of layers")
    return tuple(_layer_item(item, f"{where}[{i}]") for i, item in enumerate(items))


def _layer_item(item: Any, where: str) -> S.Layer:
    if isinstance(item, str):
        return parse_layer(item)
    if isinstance(item, dict) and len(item) == 1 and "residual" in item:
        block = item["residual"]
        if not isinstance(block, dict) or "body" not in block:
            raise SpecError(f'{where}: "residual" needs an object with "body"')
        unknown = set(block) - {"body", "shortcut", "act"}
        if unknown:
            raise SpecError(f"{where}: unknown residual key '{sorted(unknown)[0]}' (body, shortcut, act)")
        shortcut = block.get("shortcut", [])
        act = block.get("act", "relu")
        if act is not None and act not in S.ACTIVATIONS:
            raise SpecError(
                f"{where}: act={act!r} is not an activation{did_you_mean(str(act), list(S.ACTIVATIONS), cutoff=0.5)}"
            )
        return S.Residual(_layer_list(block["body"], f"{where}.body"), _layer_list(shortcut, f"{where}.shortcut"), act)
    if isinstance(item, dict) and len(item) == 1 and "concat" in item:
        branches = item["concat"]
        if not isinstance(branches, list) or not branches:
            raise SpecError(f'{where}: "concat" needs a list of branches (each a list of layers)')
        return S.Concat(tuple(_layer_list(b, f"{where}.concat[{i}]") for i, b in enumerate(branches)))
    raise SpecError(
        f'{where}: a layer is a word like "conv:16,f=3", {{"residual": ...}} or '
        f'{{"concat": ...}}, not {json.dumps(item)[:60]}'
    )


def _describe(item: Any) -> str:
    if isinstance(item, str):
        return item
    key = next(iter(item))
    return f"{key}(...)"


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
