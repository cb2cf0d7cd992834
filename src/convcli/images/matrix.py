"""Matrices typed in the shell, read from files or stdin, and printed back as text.

One grammar serves every text source (a shell word, a ``.csv``/``.txt`` file, stdin):

- values are separated by ``,`` or by whitespace: ``3,0,1``, ``3 0 1`` and ``3, 0, 1`` are alike;
- rows are separated by ``;`` or by line breaks; blank rows are skipped;
- channels are separated by ``|``, giving a ``(C, H, W)`` stack: ``"1,2;3,4|5,6;7,8"``; in a file
  a line holding only ``|`` separates channels;
- in files, ``#`` starts a comment that runs to the end of the line.

A matrix whose every value is written as an integer stays integer (``int64``) and comes back
flagged, so that a command can print an integer result without decimals.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np

from convcli.errors import InputError, ShapeError

MATRIX_SUFFIXES = (".npy", ".csv", ".txt")
EXAMPLE = "3,0,1;1,5,8;2,7,2"
_VALUE_SEP = re.compile(r"\s*,\s*|\s+")
_ROW_SEP = re.compile(r"[;\n]")
_NUMERIC = re.compile(r"[\d\s.eE+-]+")


class MatrixInput(NamedTuple):
    """A matrix read from the shell, a file or stdin.

    ``array`` is ``(H, W)`` or ``(C, H, W)``: ``int64`` when ``integer`` is true, else floating
    point. ``source`` names where it came from, for messages.
    """

    array: np.ndarray
    integer: bool
    source: str


def is_matrix_text(arg: str) -> bool:
    """Whether a command-line word is a typed matrix rather than a file name.

    A path that exists always wins, and ``-`` means stdin. Otherwise the word is a matrix if it
    has a digit and either a separator (``,`` ``;`` ``|``) or nothing but number characters, so
    that a missing ``photo2.png`` is reported as a missing file.

    >>> is_matrix_text("3,0,1;1,5,8;2,7,2"), is_matrix_text("7"), is_matrix_text("photo2.png")
    (True, True, False)
    """
    if arg == "-" or os.path.exists(arg) or not any(ch.isdigit() for ch in arg):
        return False
    return any(sep in arg for sep in ",;|") or _NUMERIC.fullmatch(arg) is not None


def parse_matrix(text: str, source: str | None = None) -> MatrixInput:
    """Parse matrix text (grammar in the module docstring).

    Parameters
    ----------
    text
        The matrix, e.g. ``"3,0,1;1,5,8;2,7,2"``.
    source
        How to name the matrix in messages; defaults to the text itself, quoted.

    Raises
    ------
    InputError
        For an empty matrix, ragged rows (naming the row and its length), channels of different
        shapes, a non-numeric value (quoted) or a NaN/infinite value.

    Examples
    --------
    >>> m = parse_matrix("3,0,1;1,5,8")
    >>> m.array.tolist(), m.integer
    ([[3, 0, 1], [1, 5, 8]], True)
    >>> parse_matrix("1 0.5|2 -1").array.shape
    (2, 1, 2)
    """
    where = source if source is not None else f"matrix {text!r}"
    channels = [_parse_channel(part, where) for part in text.split("|")]
    if all(not rows for rows in channels):
        raise InputError(f"{where}: the matrix is empty; write it like {EXAMPLE!r}")
    for number, rows in enumerate(channels, start=1):
        if not rows:
            raise InputError(f"{where}: channel {number} is empty")
        shape = (len(rows), len(rows[0]))
        first = (len(channels[0]), len(channels[0][0]))
        if shape != first:
            raise InputError(
                f"{where}: channel {number} is {shape[0]} x {shape[1]} but channel 1 is {first[0]} x {first[1]}"
            )
    values = [value for rows in channels for row in rows for value in row]
    integer = all(isinstance(value, int) for value in values)
    try:
        array = np.array(channels, dtype=np.int64 if integer else np.float64)
    except OverflowError as exc:
        raise InputError(f"{where}: an integer does not fit in 64 bits") from exc
    return MatrixInput(array[0] if len(channels) == 1 else array, integer, where)


def _parse_channel(text: str, where: str) -> list[list[int | float]]:
    """Rows of numbers of one channel, checked to have equal lengths."""
    rows: list[list[int | float]] = []
    for line in _ROW_SEP.split(text):
        if not line.strip():
            continue
        row = [_number(token, len(rows) + 1, where) for token in _VALUE_SEP.split(line.strip())]
        if rows and len(row) != len(rows[0]):
            raise InputError(
                f"{where}: ragged rows: row {len(rows) + 1} has {len(row)} values but row 1 has {len(rows[0])}"
            )
        rows.append(row)
    return rows


def _number(token: str, row: int, where: str) -> int | float:
    if not token:
        raise InputError(f"{where}: empty value in row {row} (two separators in a row?)")
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        raise InputError(f"{where}: non-numeric value {token!r} in row {row}") from None
    if not np.isfinite(value):
        raise InputError(f"{where}: value {token!r} in row {row} is not finite")
    return value


def read_matrix(arg: str, stdin: TextIO | None = None) -> MatrixInput:
    """Read a matrix from a command-line word: ``-`` (stdin), a file, or typed text.

    Files: ``.npy`` (2-D or 3-D numeric; integer dtypes count as integer), ``.csv`` and ``.txt``
    (text grammar in the module docstring). ``stdin`` replaces ``sys.stdin`` (for tests).

    Raises
    ------
    InputError
        Naming the file or the text: missing file, a directory, an unsupported suffix, an
        unreadable or empty file, or any error of :func:`parse_matrix`.
    """
    if arg == "-":
        return parse_matrix((stdin or sys.stdin).read(), source="standard input")
    if os.path.exists(arg):  # not Path.exists: it raises on a name longer than the OS allows
        return _read_file(Path(arg))
    if is_matrix_text(arg):
        return parse_matrix(arg)
    raise InputError(f"{arg}: no such file, and not a matrix such as {EXAMPLE!r}")


def _read_file(path: Path) -> MatrixInput:
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a matrix file")
    suffix = path.suffix.lower()
    if suffix not in MATRIX_SUFFIXES:
        raise InputError(f"{path}: matrix files are {' '.join(MATRIX_SUFFIXES)}, got {suffix or 'no suffix'}")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    if suffix != ".npy":
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read as text: {exc}") from exc
        return parse_matrix(re.sub(r"#[^\n]*", "", text), source=str(path))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array: {exc}") from exc
    if array.ndim not in (2, 3) or array.size == 0:
        raise InputError(f"{path}: expected a non-empty (H, W) or (C, H, W) array, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InputError(f"{path}: expected numbers, got dtype {array.dtype}")
    integer = array.dtype.kind in "biu"
    if integer:
        array = array.astype(np.int64)
    elif not np.isfinite(array).all():
        raise InputError(f"{path}: contains NaN or infinite values")
    return MatrixInput(array, integer, str(path))


def _cells(array: np.ndarray, integer: bool) -> np.ndarray:
    """Each value as text: integers plain, floats to 4 decimals with trailing zeros trimmed."""
    if integer and np.all(np.mod(array, 1) == 0):
        return np.vectorize(lambda v: str(int(v)), otypes=[object])(array)

    def fixed(v: float) -> str:
        text = f"{v:.4f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text

    return np.vectorize(fixed, otypes=[object])(array)


def format_matrix(array: np.ndarray, integer: bool = False) -> str:
    """Text of a 1-D, 2-D or ``(C, H, W)`` array with right-aligned columns.

    With ``integer`` true, values are printed without decimals if they are all whole numbers
    (an average pool of integers may not be; then it falls back to floats). Floats get up to 4
    decimals, trailing zeros trimmed. All cells share one width, so channels line up; each
    channel of a 3-D array is preceded by a ``channel i:`` line (from 0) and a blank line.

    Examples
    --------
    >>> print(format_matrix(np.array([[3, -10], [1, 5]]), integer=True))
      3  -10
      1    5
    >>> print(format_matrix(np.array([[0.5, 1 / 3]])))
       0.5  0.3333
    """
    values = np.asarray(array)
    if values.ndim not in (1, 2, 3):
        raise ShapeError(f"format_matrix: expected a 1-D, 2-D or 3-D array, got shape {values.shape}")
    cells = _cells(np.atleast_2d(values), integer)
    width = max((len(cell) for cell in cells.flat), default=0)

    def block(rows: np.ndarray) -> str:
        return "\n".join("  ".join(cell.rjust(width) for cell in row) for row in rows)

    if values.ndim < 3:
        return block(cells)
    return "\n\n".join(f"channel {i}:\n{block(rows)}" for i, rows in enumerate(cells))


def matrix_file_text(array: np.ndarray, integer: bool = False, csv: bool = False) -> str:
    """A matrix as the text of a ``.csv`` file (``csv``: comma-separated) or a ``.txt`` file (as printed).

    Both follow the reading grammar, so :func:`read_matrix` reads them back; channels of a 3-D
    array are separated by a ``|`` line. Floats are rounded to 4 decimals.

    >>> print(matrix_file_text(np.array([[1, 2], [3, 4]]), integer=True, csv=True), end="")
    1,2
    3,4
    """
    values = np.asarray(array)
    if csv:
        planes = _cells(values if values.ndim == 3 else np.atleast_2d(values)[None], integer)
        return "\n|\n".join("\n".join(",".join(row) for row in plane) for plane in planes) + "\n"
    text = format_matrix(values, integer).replace("\n\nchannel", "\n|\nchannel")
    return re.sub(r"(?m)^channel \d+:$", lambda m: f"# {m.group(0)}", text) + "\n"
