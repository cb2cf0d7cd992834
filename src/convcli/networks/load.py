"""What a user names on the command line, read into one network: shell words, a ``.json`` spec
file, a zoo name or a checkpoint."""

from __future__ import annotations

from pathlib import Path

from convcli.errors import SpecError, did_you_mean
from convcli.networks import spec as S
from convcli.networks import zoo
from convcli.networks.specfile import parse_file
from convcli.networks.words import is_shape, parse_shape, parse_words


def load_network(words: list[str], input_shape: str | None = None) -> S.Network:
    """What a user names on the command line: a zoo name, a ``.json`` spec file, or shell words.

    ``input_shape`` (``HxWxC``) replaces the input of a zoo model or spec file.
    """
    if not words:
        raise SpecError(
            "no network given: name a zoo model (see 'convcli params --list'), a .json "
            "spec file, or an input shape and layers, e.g. 28x28x1 conv:6,f=5"
        )
    first = words[0]
    if first.lower() in zoo.ZOO or first.lower().endswith(".json"):
        if len(words) > 1:
            raise SpecError(f"'{first}' is a whole network: no layer words may follow it (got '{words[1]}')")
        if first.lower() in zoo.ZOO:
            return zoo.get(first, input_shape)
        network = parse_file(Path(first))
    else:
        if not is_shape(first) and ":" not in first and len(words) == 1:
            raise SpecError(
                f"'{first}' is not a zoo model, a .json spec file or an input shape"
                f"{did_you_mean(first.lower(), list(zoo.ZOO), cutoff=0.5)}; see 'convcli params --list'"
            )
        network = parse_words(words)
    if input_shape is not None:
        network = S.Network(parse_shape(input_shape), network.steps, network.name, network.source)
    return network
