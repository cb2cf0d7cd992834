"""The errors convcli's core raises; the CLI turns them into one `Error: ...` line and exit code 1."""


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
