"""The JSON spec syntax: one module reads it and writes it, for spec files and checkpoints alike.

A spec is ``{"name": ..., "input": "32x32x3" or [32, 32, 3], "layers": [...]}``. A layer is a word
(the grammar of :mod:`convcli.networks.words`), ``{"concat": [[...], [...]]}`` (parallel branches)
``{"residual": {"body": [...], "shortcut": [...], "act": "relu"}}``, where a missing
``shortcut`` is the identity, ``"shortcut": null`` means no skip connection and ``"act": null``
no activation after the add, or ``{"scale": [...]}`` (the input times what the layers make of it,
squeeze-and-excitation). Blocks nest up to :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convcli.errors import SpecError, did_you_mean
from convcli.networks import spec as S
from convcli.networks.words import format_layer, parse_layer, parse_shape

# Real networks nest blocks a few levels deep; the cap keeps a hostile file from exhausting
# Python's recursion here or in the walks over the network that follow.
MAX_DEPTH = 32


def parse_file(path: Path) -> S.Network:
    """A JSON spec file (see the module docstring); its name defaults to the file's stem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec file '{path}': {getattr(err, 'strerror', None) or err}") from None
    where = f"spec file '{path}'"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise SpecError(f"{where} nests too deeply: blocks may nest at most {MAX_DEPTH} levels") from None
    return network_from_json(doc, where, name=Path(path).stem, source=str(path))


def network_from_json(doc: Any, where: str = "spec", name: str = "", source: str = "") -> S.Network:
    """The network a spec document describes, checked part by part; the inverse of
    :func:`network_to_json`. ``where`` starts every error message; ``name`` is used when the
    document has none.

    >>> network_from_json({"input": [8, 8, 1], "layers": ["conv:4,f=3", {"residual": {"body": ["relu"]}}]}).layers
    (Conv(channels=4, f=3, s=1, p=0, d=1, g=1, bias=True, table=None), Residual(body=(Activation(name='relu'),), \
shortcut=(), act='relu'))
    """
    if not isinstance(doc, dict) or "input" not in doc or "layers" not in doc:
        raise SpecError(f'{where} needs an object with "input" and "layers"')
    shape = doc["input"]
    if isinstance(shape, list) and len(shape) == 3 and all(type(v) is int for v in shape):
        shape = "x".join(map(str, shape))
    if not isinstance(shape, str):
        raise SpecError(f'{where}: "input" must be "HxWxC" or [H, W, C]')
    try:
        layers = _layer_list(doc["layers"], "layers", 0)
        input_shape = parse_shape(shape)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    if not layers:
        raise SpecError(f'{where}: "layers" is empty')
    steps = tuple(S.Step(layer, _describe(item)) for layer, item in zip(layers, doc["layers"]))
    return S.Network(input_shape, steps, name=str(doc.get("name") or name), source=source)


def _layer_list(items: Any, where: str, depth: int) -> tuple:
    if not isinstance(items, list):
        raise SpecError(f"{where} must be a list of layers")
    if depth > MAX_DEPTH:
        raise SpecError(f"{where}: blocks nest more than {MAX_DEPTH} levels deep")
    return tuple(_layer_item(item, f"{where}[{i}]", depth) for i, item in enumerate(items))


def _layer_item(item: Any, where: str, depth: int) -> S.Layer:
    if isinstance(item, str):
        try:
            return parse_layer(item)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None
    if isinstance(item, dict) and len(item) == 1 and "residual" in item:
        block = item["residual"]
        if not isinstance(block, dict) or "body" not in block:
            raise SpecError(f'{where}: "residual" needs an object with "body"')
        unknown = set(block) - {"body", "shortcut", "act"}
        if unknown:
            raise SpecError(f"{where}: unknown residual key '{sorted(unknown)[0]}' (body, shortcut, act)")
        act = block.get("act", "relu")
        if act is not None and act not in S.ACTIVATIONS:
            raise SpecError(
                f"{where}: act={act!r} is not an activation{did_you_mean(str(act), list(S.ACTIVATIONS), cutoff=0.5)}"
            )
        body = _layer_list(block["body"], f"{where}.body", depth + 1)
        # a missing shortcut is the identity; null means no skip connection at all
        shortcut = block.get("shortcut", [])
        if shortcut is None:
            return S.Residual(body, None, act)
        return S.Residual(body, _layer_list(shortcut, f"{where}.shortcut", depth + 1), act)
    if isinstance(item, dict) and len(item) == 1 and "concat" in item:
        branches = item["concat"]
        if not isinstance(branches, list) or not branches:
            raise SpecError(f'{where}: "concat" needs a list of branches (each a list of layers)')
        return S.Concat(tuple(_layer_list(b, f"{where}.concat[{i}]", depth + 1) for i, b in enumerate(branches)))
    if isinstance(item, dict) and len(item) == 1 and "scale" in item:
        return S.Scale(_layer_list(item["scale"], f"{where}.scale", depth + 1))
    raise SpecError(
        f'{where}: a layer is a word like "conv:16,f=3", {{"residual": ...}}, {{"concat": ...}} or '
        f'{{"scale": ...}}, not {json.dumps(item)[:60]}'
    )


def _describe(item: Any) -> str:
    if isinstance(item, str):
        return item
    return f"{next(iter(item))}(...)"


def network_to_json(network: S.Network) -> dict:
    """The spec document of ``network``: what a spec file holds and a checkpoint stores.

    Each layer is the word that wrote it when that word reads back to the same layer (else its
    :func:`~convcli.networks.words.format_layer` word), so the document reads back to an equal
    network.

    >>> network_to_json(S.Network((8, 8, 1), (S.Step(S.Residual((S.Conv(4, 3, 1, 1),), None, None), "r"),)))
    {'name': '', 'input': [8, 8, 1], 'layers': [{'residual': {'body': ['conv:4,p=1'], 'shortcut': None, 'act': None}}]}
    """
    return {
        "name": network.name,
        "input": list(network.input),
        "layers": [_step_to_json(step) for step in network.steps],
    }


def _step_to_json(step: S.Step) -> str | dict:
    if not isinstance(step.layer, S.CONTAINERS):
        try:
            if parse_layer(step.word) == step.layer:
                return step.word
        except SpecError:
            pass
    return _layer_to_json(step.layer)


def _layer_to_json(layer: S.Layer) -> str | dict:
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
    if isinstance(layer, S.Scale):
        return {"scale": [_layer_to_json(x) for x in layer.body]}
    word = format_layer(layer)
    # format_layer leaves out defaults; check the word reads back to the same layer
    if parse_layer(word) != layer:
        raise SpecError(f"layer {layer} does not round-trip through '{word}'")
    return word
