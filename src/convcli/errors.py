"""The errors convcli's core raises; the CLI turns them into one `Error: ...` line and exit code 1."""

from __future__ import annotations

from collections.abc import Iterable


class ConvcliError(Exception):
    """Base class: the message names the parameter and the offending value or shape."""


class SpecError(ConvcliError):
    """A network spec (shell words or a spec file) that does not parse or does not fit together."""


class ShapeError(ConvcliError):
    """Sizes that give no valid output: a non-positive shape, padding out of range, and so on."""


class InputError(ConvcliError):
    """An input file, matrix or kernel that cannot be read or used."""


class OutputError(ConvcliError):
    """An output that cannot be written safely."""


class DataError(ConvcliError):
    """A data set that is missing, malformed or fails its checksum."""


class TrainingError(ConvcliError):
    """A training run that cannot start or cannot go on."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """The hint every "unknown name" message ends with: the nearest choices, or nothing.

    >>> did_you_mean("sobelx", ["sobel-x", "sobel-y", "box"], n=2)
    " (did you mean 'sobel-x' or 'sobel-y'?)"
    >>> did_you_mean("zzz", ["relu"])
    ''
    """
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=cutoff)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
