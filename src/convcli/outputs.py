"""Safe output files: checked paths and atomic writes.

Every file convcli writes goes through :func:`atomic_write`. The data is written to a temporary
file in the destination directory and renamed over the destination with :func:`os.replace`, which
is atomic on POSIX and Windows when both names are on one file system (hence the same directory,
not ``/tmp``). A reader therefore sees either the old file or the complete new one, and a failed
write leaves neither a half-written destination nor a stray temporary file.

Before anything is written, :func:`check_output_path` refuses an output that is a directory, that
lies in a directory that does not exist or cannot be written, or that is one of the command's
inputs (writing the result of ``edges photo.png -o photo.png`` over its own input would destroy the
data it was computed from).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from convcli.errors import OutputError

PathLike = str | os.PathLike


def check_output_path(
    path: PathLike, inputs: Iterable[PathLike] = (), *, label: str = "output", others: Iterable[PathLike] = ()
) -> Path:
    """Check that ``path`` can be written safely and return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path
        The output file.
    inputs
        The command's input files. Entries that are not existing files (``-`` for stdin, a matrix
        typed in the shell) are skipped.
    label
        How messages name the output: ``"output"``, or the option that gave it (``"--plot"``).
    others
        The command's other outputs, which need not exist yet; ``path`` must not be one of them.

    Raises
    ------
    OutputError
        If ``path`` is a directory, its directory is missing, not a directory or not writable, or
        it names the same file as one of ``inputs`` or ``others`` (also through a symlink or a
        hard link).
    """
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"{label} {out} is a directory; give a file name")
    parent = out.parent
    if not parent.exists():
        raise OutputError(f"{label} {out}: directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{label} {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{label} {out}: directory {parent} is not writable")
    clash = _same_as_input(out, inputs)
    if clash is not None:
        raise OutputError(
            f"{label} {out} is also an input ({clash}); refusing to overwrite an input, choose another output name"
        )
    for other in others:
        if os.path.realpath(out) == os.path.realpath(other) or _same_as_input(out, [other]) is not None:
            raise OutputError(f"{label} {out} is also another output of this command ({other}); give two names")
    return out


def _same_as_input(out: Path, inputs: Iterable[PathLike]) -> PathLike | None:
    """The first of ``inputs`` that is the file ``out`` names, or None.

    An output that does not exist yet cannot be an existing input under any name, so only an
    existing one is compared, by device and inode (which sees through symlinks and hard links).
    """
    try:
        target = out.stat()
    except OSError:
        return None
    for given in inputs:
        try:
            st = os.stat(given)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return given
    return None


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None], inputs: Iterable[PathLike] = ()) -> Path:
    """Write a file through ``write(fileobj)`` atomically and return its path.

    ``write`` receives a binary file object open on a temporary file beside ``path``; once it
    returns, the data is flushed to disk and the temporary file is renamed to ``path``. The new
    file gets the permissions of the file it replaces, or the usual ``0o666`` less the umask.

    Parameters
    ----------
    path
        The output file; checked with :func:`check_output_path`.
    write
        Writes the whole content to the file object it is given.
    inputs
        The command's input files, which must not be overwritten.

    Raises
    ------
    OutputError
        If the path is refused, or writing fails with an :class:`OSError` (disk full, permission
        denied, an encoder's I/O error). Any other exception from ``write`` is a bug and propagates
        unchanged. In every case no temporary file is left behind and an existing ``path`` keeps
        its old content.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     atomic_write(pathlib.Path(folder) / "hello.txt", lambda f: f.write(b"hi")).read_bytes()
    b'hi'
    """
    out = check_output_path(path, inputs)
    mode = _new_file_mode(out)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    try:
        # Read access too: Pillow's multi-page TIFF writer reads back what it wrote.
        with os.fdopen(fd, "w+b") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, out)
    except BaseException as exc:
        # Cleanup must also run on KeyboardInterrupt, so catch everything and re-raise.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
        raise
    return out


def _new_file_mode(out: Path) -> int:
    """Permissions for the new file: those of the file it replaces, else 0o666 less the umask."""
    if out.exists():
        return out.stat().st_mode & 0o7777
    # mkstemp creates files with 0o600; reading the umask means setting it, so set it back at once.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
