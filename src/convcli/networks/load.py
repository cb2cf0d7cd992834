"""What a user names on the command line, read into one network: shell words, a ``.json`` spec
file, a zoo name, a checkpoint ``.npz`` (the network it was trained as) or an ONNX model ``.onnx``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from convcli.errors import SpecError, did_you_mean
from convcli.networks import spec as S
from convcli.networks import zoo
from convcli.networks.specfile import parse_file
from convcli.networks.words import is_shape, parse_shape, parse_words

SOURCES = "a zoo model, a .json spec file, a .npz checkpoint, a .onnx model or an input shape (e.g. 39x39x3)"
FILES = (".json", ".npz", ".onnx")


def load_network(words: list[str], input_shape: str | None = None, strict: bool = False) -> S.Network:
    """The network ``words`` name: a zoo name, a ``.json`` spec file, a ``.npz`` checkpoint, a
    ``.onnx`` model, or an input shape and layer words.

    ``input_shape`` (``HxWxC``; for a ``.onnx`` model also ``NxCxHxW``) replaces the input of a
    zoo model, spec file, checkpoint or model file; layer words start with their own input, so it
    is refused next to them. ``strict`` refuses a network with operators convcli does not know.
    """
    network = _load(words, input_shape)
    unknown = S.unknown_operators(network.layers)
    if strict and unknown:
        listed = ", ".join(f"{op} x {n}" for op, n in unknown.items())
        raise SpecError(f"--strict: operators convcli does not know: {listed}")
    return network


def _load(words: list[str], input_shape: str | None) -> S.Network:
    if not words:
        raise SpecError(
            "no network given: name a zoo model (see 'convcli params --list'), a .json spec file, "
            "a .npz checkpoint, or an input shape and layers, e.g. 28x28x1 conv:6,f=5"
        )
    first = words[0]
    suffix = Path(first).suffix.lower()
    if first.lower() not in zoo.ZOO and suffix not in FILES:
        if not is_shape(first):
            # a lone word that is not a layer is most likely a mistyped zoo name
            hint = did_you_mean(first.lower(), list(zoo.ZOO), cutoff=0.5) if ":" not in first else ""
            raise SpecError(f"the first word '{first}' must be {SOURCES}{hint}; see 'convcli params --list'")
        if input_shape is not None:
            raise SpecError(
                f"--input {input_shape} replaces the input of a zoo model, spec file or checkpoint; "
                f"layer words start with their own input ({first}): change that word instead"
            )
        return parse_words(words)
    if len(words) > 1:
        raise SpecError(f"'{first}' is a whole network: no layer words may follow it (got '{words[1]}')")
    if first.lower() in zoo.ZOO:
        return zoo.get(first, input_shape)
    if suffix == ".onnx":
        # onnx and numpy come with the reader: only this source pays for them at start-up
        from convcli.interop.onnx_in import read_onnx

        return read_onnx(Path(first), input_shape)
    network = parse_file(Path(first)) if suffix == ".json" else _trained(Path(first))
    if input_shape is not None:
        network = replace(network, input=parse_shape(input_shape))
    return network


def _trained(path: Path) -> S.Network:
    """The network a checkpoint holds, named after the file when it was trained from words."""
    # numpy comes with the checkpoint reader: only this source pays for it at start-up
    from convcli.nn import checkpoint

    network = checkpoint.load(path).network
    return replace(network, name=network.name or path.stem, source=str(path))
