"""The shell-word grammar of a network: reading words into spec dataclasses, and writing them back.

A layer word is ``kind:positional,...,key=value,...``; nothing in it needs quoting in bash or zsh.
The first word is the input, ``HxWxC`` as the course writes it (``39x39x3``; ``28x28`` means one
channel). Every error is a :class:`SpecError` that quotes the word and names the bad part.
JSON spec files (:mod:`convcli.networks.specfile`) hold the same words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Any, NamedTuple

from convcli.errors import ShapeError, SpecError, did_you_mean
from convcli.networks import spec as S
from convcli.shapes import PADDING_MODES, parse_padding

_INT = re.compile(r"[0-9]{1,12}")
_FLOAT = re.compile(r"[0-9]{0,12}(\.[0-9]{0,12})?([eE]-?[0-9]{1,3})?")
_SHAPE = re.compile(r"([0-9]{1,9})x([0-9]{1,9})(?:x([0-9]{1,9}))?")


def _positive(text: str) -> int:
    if not _INT.fullmatch(text) or int(text) < 1:
        raise ValueError("a positive integer")
    return int(text)


def _natural(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError("a non-negative integer")
    return int(text)


def _padding(text: str) -> int | str:
    try:
        return parse_padding(text)
    except ShapeError:
        raise ValueError(f"a non-negative integer or one of {', '.join(PADDING_MODES)}") from None


def _flag(text: str) -> bool:
    value = {
        "1": True,
        "true": True,
        "yes": True,
        "on": True,
        "0": False,
        "false": False,
        "no": False,
        "off": False,
    }.get(text.lower())
    if value is None:
        raise ValueError("0 or 1")
    return value


def _fraction(text: str) -> float:
    if not text or not _FLOAT.fullmatch(text) or not 0 <= float(text) < 1:
        raise ValueError("a number from 0 up to (not including) 1")
    return float(text)


def _positive_float(text: str) -> float:
    if not text or not _FLOAT.fullmatch(text) or not float(text) > 0:
        raise ValueError("a positive number")
    return float(text)


def _version(text: str) -> float:
    if text not in ("1", "1.0", "1.5"):
        raise ValueError("1 or 1.5")
    return float(text)


_OP = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def _op(text: str) -> str:
    if not _OP.fullmatch(text):
        raise ValueError("an operator name (letters, digits, _ and .)")
    return text


def _map_shape(text: str) -> str:
    sizes = text.split("x")
    if len(sizes) not in (1, 3) or not all(_INT.fullmatch(n) and int(n) > 0 for n in sizes):
        raise ValueError("a shape HxWxC or a positive count of flat values")
    return text


def _table(text: str) -> str:
    if text != "lenet5":
        raise ValueError("'lenet5' (the only connection table convcli knows)")
    return text


class _Kind(NamedTuple):
    """How one word kind is read: the dataclass it builds, its positional keys, key converters."""

    build: type[Any]
    positional: tuple[str, ...]
    keys: Mapping[str, Callable[[str], Any]]
    fixed: tuple[tuple[str, Any], ...] = ()


_CONV = {
    "channels": _positive,
    "f": _positive,
    "s": _positive,
    "p": _padding,
    "d": _positive,
    "g": _positive,
    "bias": _flag,
}
_POOL = {"f": _positive, "s": _positive, "p": _padding, "ceil": _flag}

KINDS: dict[str, _Kind] = {
    "conv": _Kind(S.Conv, ("channels", "f", "s", "p"), {**_CONV, "table": _table}),
    "dwconv": _Kind(S.DWConv, ("f", "s", "p"), {k: _CONV[k] for k in "fspd"} | {"m": _positive, "bias": _flag}),
    "convT": _Kind(S.ConvT, ("channels", "f", "s", "p"), {**_CONV, "p": _natural, "op": _natural}),
    "maxpool": _Kind(S.Pool, ("f", "s", "p"), _POOL, (("kind", "max"),)),
    "avgpool": _Kind(S.Pool, ("f", "s", "p"), {**_POOL, "count_pad": _flag}, (("kind", "avg"),)),
    "gap": _Kind(S.GlobalPool, (), {}, (("kind", "avg"),)),
    "gmp": _Kind(S.GlobalPool, (), {}, (("kind", "max"),)),
    "adaptivepool": _Kind(S.AdaptivePool, ("size",), {"size": _positive}),
    "subsample": _Kind(S.Subsample, ("f",), {"f": _positive}),
    "bn": _Kind(S.BatchNorm, ("eps",), {"eps": _positive_float}),
    "dropout": _Kind(S.Dropout, ("rate",), {"rate": _fraction}),
    "prelu": _Kind(S.PReLU, (), {"shared": _flag}),
    "slice": _Kind(S.ChannelSlice, ("start", "stop"), {"start": _natural, "stop": _positive}),
    "shuffle": _Kind(S.Shuffle, ("g",), {"g": _positive}),
    "unknown": _Kind(S.Unknown, ("op",), {"op": _op, "shape": _map_shape}),
    "flatten": _Kind(S.Flatten, (), {}),
    "fc": _Kind(S.FC, ("units",), {"units": _positive, "bias": _flag}),
    "rbf": _Kind(S.RBF, ("units",), {"units": _positive}),
    "res": _Kind(S.BasicBlock, ("channels", "s"), {"channels": _positive, "s": _positive}),
    "bottleneck": _Kind(
        S.Bottleneck, ("channels", "s"), {"channels": _positive, "s": _positive, "e": _positive, "v": _version}
    ),
    "inception": _Kind(
        S.Inception,
        ("c1", "r3-c3", "r5-c5", "pp"),
        {**{k: _positive for k in ("c1", "r3", "c3", "r5", "c5", "pp", "f5")}, "bn": _flag, "reduce": _flag},
    ),
    "invres": _Kind(
        S.InvertedResidual, ("channels", "t", "s"), {"channels": _positive, "t": _positive, "s": _positive}
    ),
    "dwsep": _Kind(S.DWSeparable, ("channels", "s"), {"channels": _positive, "s": _positive}),
    **{name: _Kind(S.Activation, (), {}, (("name", name),)) for name in S.ACTIVATIONS},
}

KIND_ALIASES = {
    "conv2d": "conv",
    "depthwise": "dwconv",
    "dw": "dwconv",
    "convt": "convT",
    "deconv": "convT",
    "convtranspose": "convT",
    "upconv": "convT",
    "pool": "maxpool",
    "max": "maxpool",
    "mp": "maxpool",
    "avg": "avgpool",
    "ap": "avgpool",
    "globalavgpool": "gap",
    "globalmaxpool": "gmp",
    "adaptiveavgpool": "adaptivepool",
    "aap": "adaptivepool",
    "batchnorm": "bn",
    "bn2d": "bn",
    "linear": "fc",
    "dense": "fc",
    "drop": "dropout",
    "basic": "res",
    "resblock": "res",
    "inv": "invres",
    "mbconv": "invres",
    "separable": "dwsep",
    "leaky_relu": "leakyrelu",
    "lrelu": "leakyrelu",
    "silu": "swish",
}

KEY_ALIASES = {
    "c": "channels",
    "out": "channels",
    "filters": "channels",
    "k": "f",
    "kernel": "f",
    "size": "f",
    "stride": "s",
    "pad": "p",
    "padding": "p",
    "dilation": "d",
    "groups": "g",
    "mult": "m",
    "multiplier": "m",
    "output_padding": "op",
    "n": "units",
    "expansion": "t",
    "ceil_mode": "ceil",
}


def kind_of(name: str) -> str:
    """The canonical kind for a word's kind name or alias, else a SpecError suggesting one."""
    if name in KINDS:
        return name
    lowered = name.lower()
    for table in (KINDS, KIND_ALIASES):
        for key in table:
            if key.lower() == lowered:
                return KIND_ALIASES.get(key, key)
    raise SpecError(
        f"unknown layer kind '{name}'{did_you_mean(lowered, sorted(KINDS) + sorted(KIND_ALIASES), cutoff=0.5)}; "
        f"known: {', '.join(sorted(KINDS, key=str.lower))}"
    )


def parse_layer(word: str) -> S.Layer:
    """One layer word into its spec dataclass.

    >>> parse_layer("conv:10,f=3,s=2")
    Conv(channels=10, f=3, s=2, p=0, d=1, g=1, bias=True, table=None)
    >>> parse_layer("maxpool:2")
    Pool(kind='max', f=2, s=None, p=0, ceil=False, count_pad=True)
    """
    try:
        return _parse_layer(word)
    except SpecError as err:
        raise SpecError(f"in '{word}': {err}") from None


def _parse_layer(word: str) -> S.Layer:
    name, _, rest = word.partition(":")
    kind = KINDS[kind_of(name.strip())]
    values: dict[str, Any] = dict(kind.fixed)
    args = [a.strip() for a in rest.split(",")] if rest.strip() else []
    positional = list(kind.positional)
    seen_key = False
    for arg in args:
        if not arg:
            raise SpecError("empty argument (two commas in a row, or a trailing comma?)")
        key, eq, text = arg.partition("=")
        if eq:
            seen_key = True
            key = key.strip()
            key = KEY_ALIASES.get(key.lower(), key.lower())
            if key not in kind.keys:
                raise SpecError(
                    f"unknown key '{arg.partition('=')[0]}'{did_you_mean(key, sorted(kind.keys), cutoff=0.5)}; "
                    f"'{name}' takes {', '.join(kind.keys) or 'no arguments'}"
                )
            names, texts = [key], [text.strip()]
        else:
            if seen_key:
                raise SpecError(f"positional value '{arg}' after a key=value argument")
            if not positional:
                raise SpecError(
                    f"too many values: '{arg}' is one more than '{name}' takes"
                    + (f" ({', '.join(kind.positional)})" if kind.positional else "")
                )
            slot = positional.pop(0)
            names = slot.split("-")
            texts = arg.split("-") if len(names) > 1 else [arg]
            if len(texts) != len(names):
                raise SpecError(f"'{arg}' should be {slot}")
        for key, text in zip(names, texts):
            if key in values and key not in dict(kind.fixed):
                raise SpecError(f"'{key}' is given twice")
            try:
                values[key] = kind.keys[key](text)
            except ValueError as err:
                raise SpecError(f"{key}={text!r} is not {err}") from None
    missing = [f.name for f in fields(kind.build) if f.default is MISSING and f.name not in values]
    if missing:
        raise SpecError(
            f"missing {', '.join(missing)}; '{name}' takes {', '.join(kind.positional)} in that order, or key=value"
        )
    return kind.build(**values)


def parse_shape(text: str) -> tuple[int, int, int]:
    """An input shape ``HxWxC`` (or ``HxW`` for one channel).

    >>> parse_shape("39x39x3")
    (39, 39, 3)
    >>> parse_shape("28x28")
    (28, 28, 1)
    """
    m = _SHAPE.fullmatch(text.strip().lower())
    if not m:
        raise SpecError(f"input shape '{text}' is not HxWxC (e.g. 39x39x3) or HxW")
    h, w, c = int(m[1]), int(m[2]), int(m[3] or 1)
    if min(h, w, c) < 1:
        raise SpecError(f"input shape '{text}' has a zero size")
    return h, w, c


def is_shape(word: str) -> bool:
    """Whether ``word`` is written as an input shape (``HxWxC`` or ``HxW``), valid or not.

    >>> is_shape("39x39x3"), is_shape("conv:3")
    (True, False)
    """
    return _SHAPE.fullmatch(word.strip().lower()) is not None


def parse_words(words: list[str], name: str = "") -> S.Network:
    """An input shape word followed by layer words."""
    if not words:
        raise SpecError("empty network: give an input shape like 28x28x1 and at least one layer")
    if not is_shape(words[0]):
        raise SpecError(f"the first word '{words[0]}' must be the input shape (e.g. 39x39x3)")
    shape = parse_shape(words[0])
    if len(words) == 1:
        raise SpecError(f"empty network: no layers after the input {words[0]}")
    steps = tuple(S.Step(parse_layer(w), w) for w in words[1:])
    return S.Network(shape, steps, name=name)


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def kind_name(layer: S.Layer) -> str:
    """The word kind that writes ``layer`` (``residual``, ``concat`` or ``scale`` for the containers).

    >>> kind_name(S.Pool("avg")), kind_name(S.Activation("gelu")), kind_name(S.Residual())
    ('avgpool', 'gelu', 'residual')
    """
    if isinstance(layer, S.CONTAINERS):
        return type(layer).__name__.lower()
    return next(
        name
        for name, kind in KINDS.items()
        if kind.build is type(layer) and all(getattr(layer, a) == v for a, v in kind.fixed)
    )


def format_layer(layer: S.Layer) -> str:
    """The word that writes ``layer``, the inverse of :func:`parse_layer` (defaults left out).

    >>> format_layer(parse_layer("conv:64,f=3,s=2,p=1,bias=0"))
    'conv:64,s=2,p=1,bias=0'
    >>> format_layer(parse_layer("maxpool:3,2,ceil=1"))
    'maxpool:3,s=2,ceil=1'
    >>> format_layer(parse_layer("inception:64,96-128,16-32,32,f5=3"))
    'inception:64,96-128,16-32,32,f5=3'
    """
    name = kind_name(layer)
    if name not in KINDS:
        return name
    kind = KINDS[name]
    skip = dict(kind.fixed)
    parts = []
    for k, slot in enumerate(kind.positional):
        names = slot.split("-")
        required = all(getattr(type(layer), n, MISSING) is MISSING for n in names)
        # required values are written in place, and so is a set first value: dropout:0.3, maxpool:3
        if required or (k == 0 and len(names) == 1 and getattr(layer, slot) != getattr(type(layer), slot)):
            parts.append("-".join(_text(getattr(layer, n)) for n in names))
            skip.update(dict.fromkeys(names))
    for f in fields(layer):
        value = getattr(layer, f.name)
        if f.name in skip or value == f.default:
            continue
        parts.append(f"{f.name}={_text(value)}")
    return name + (":" + ",".join(parts) if parts else "")


def format_network(network: S.Network) -> str:
    """The network as one line of words (containers appear as 'residual', 'concat' or 'scale').

    >>> format_network(parse_words("28x28x1 conv:6,f=5,s=1 relu".split()))
    '28x28x1 conv:6,f=5 relu'
    """
    return " ".join(["x".join(map(str, network.input))] + [format_layer(layer) for layer in network.layers])
