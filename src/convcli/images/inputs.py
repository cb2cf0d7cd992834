"""What a ``conv``/``pool`` INPUT word and a ``--kernel`` word name, and reading them.

An INPUT is an image file, a matrix file (``.npy``, ``.csv``, ``.txt``), ``-`` for standard input
(an image, or a matrix as text), or a matrix typed in the shell (`convcli.images.matrix`).
`resolve_input` tells these apart without decoding anything, so that the outputs can be planned
and checked first; `load_source` then makes a ``(C, H, W)`` volume: a grey image or a 2-D matrix
has C = 1.

A kernel is a registry name (`convcli.images.kernels`), a typed matrix (``|`` between channels
gives a ``(C, fH, fW)`` kernel) or a matrix file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from convcli.errors import InputError
from convcli.images.kernels import get_kernel
from convcli.images.matrix import EXAMPLE, MATRIX_SUFFIXES, is_matrix_text, parse_matrix, read_matrix
from convcli.images.read import DEFAULT_MAX_PIXELS, STDIN, is_image_data, read_image, stdin_bytes


@dataclass(frozen=True)
class InputWord:
    """An INPUT word, told apart before anything is decoded.

    ``kind`` is ``"typed"`` (a matrix in the shell), ``"matrix"`` (a ``.npy``/``.csv``/``.txt``
    file, or text on stdin) or ``"image"``; ``path`` is the file named, ``data`` what stdin held.
    """

    word: str
    kind: str
    path: Path | None = None
    data: bytes | None = None


def resolve_input(arg: str, stdin: IO | None = None) -> InputWord:
    """What an INPUT word is: ``-`` (standard input: an image or matrix text), a matrix file, an
    image file, or a typed matrix. Standard input is read here; no file is decoded yet.

    >>> resolve_input("1,2;3,4").kind
    'typed'
    """
    if not arg.strip():
        raise InputError(f"INPUT is empty; give an image, a matrix file, - (stdin) or a matrix such as {EXAMPLE!r}")
    if arg == STDIN:
        data = stdin_bytes(stdin)
        return InputWord(arg, "image" if is_image_data(data) else "matrix", data=data)
    # os.path.exists, not Path.exists: a long typed matrix is a file name too long for the OS
    if not os.path.exists(arg):
        if is_matrix_text(arg):
            return InputWord(arg, "typed")
        raise InputError(f"{arg}: no such file, and not a matrix such as {EXAMPLE!r}")
    path = Path(arg)
    return InputWord(arg, "matrix" if path.suffix.lower() in MATRIX_SUFFIXES else "image", path)


@dataclass(frozen=True)
class Source:
    """An input as a ``(C, H, W)`` volume; ``path`` is set for an image (``-`` from stdin),
    ``ndim`` is as given."""

    array: np.ndarray
    integer: bool
    name: str
    path: Path | None
    ndim: int
    notes: tuple[str, ...] = ()


def load_source(word: InputWord, channels: str = "gray", max_pixels: int = DEFAULT_MAX_PIXELS) -> Source:
    """Decode a resolved INPUT word into a ``(C, H, W)`` volume.

    >>> load_source(resolve_input("1,2;3,4")).array.shape
    (1, 2, 2)
    """
    if word.kind == "image":
        given = word.data if word.data is not None else Path(word.word)
        image = read_image(given, channels=channels, max_pixels=max_pixels)
        name = "standard input" if word.data is not None else str(word.path)
        return Source(image.array, False, name, image.path, 3, image.notes)
    if word.kind == "typed":
        matrix = parse_matrix(word.word)
    elif word.data is not None:
        try:
            text = word.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("standard input is neither an image convcli reads nor a matrix as text") from None
        matrix = parse_matrix(text, source="standard input")
    else:
        matrix = read_matrix(word.word)
    volume = matrix.array if matrix.array.ndim == 3 else matrix.array[None]  # C, H, W
    return Source(volume.astype(np.float64), matrix.integer, matrix.source, None, matrix.array.ndim)


@dataclass(frozen=True)
class KernelInput:
    """A kernel as given: ``(fH, fW)`` per channel, or ``(C, fH, fW)`` across channels;
    ``path`` is the matrix file it came from."""

    name: str
    array: np.ndarray
    integer: bool
    path: Path | None = None


def load_kernel(arg: str, index: int = 1) -> KernelInput:
    """A ``--kernel`` word: a registry name, a matrix file, or a typed matrix (named ``k<index>``).

    >>> load_kernel("vertical").array.tolist()
    [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]
    """
    if not arg.strip():
        raise InputError("--kernel is empty; give a name such as sobel-x or a matrix such as '1,0,-1'")
    if os.path.exists(arg):
        matrix = read_matrix(arg)
        return KernelInput(Path(arg).stem, matrix.array.astype(np.float64), matrix.integer, Path(arg))
    if is_matrix_text(arg):
        matrix = parse_matrix(arg, source=f"--kernel {arg!r}")
        return KernelInput(f"k{index}", matrix.array.astype(np.float64), matrix.integer)
    if Path(arg).suffix.lower() in MATRIX_SUFFIXES or "/" in arg or os.sep in arg:
        raise InputError(f"--kernel {arg}: no such file (a kernel file is {' '.join(MATRIX_SUFFIXES)})")
    kernel = get_kernel(arg)  # an unknown name raises, suggesting the closest ones
    integer = all(float(v).is_integer() for row in kernel.matrix for v in row)
    return KernelInput(kernel.name, kernel.array(), integer)
