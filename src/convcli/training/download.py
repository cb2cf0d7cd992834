"""Where MNIST is cached and how it gets there: the cache directory and a checked HTTP download.

Only the standard library is used (``urllib``), and numpy is not imported. A file reaches the
cache only whole and verified: it is streamed through `convcli.outputs.atomic_write` into a
hidden temporary file in the cache directory, its *decompressed* content is checked against the
official md5 (a re-gzipped mirror copy has another ``.gz`` md5, since gzip stores a timestamp),
and only then is it renamed into place. Any failure removes the temporary file and raises a `DataError` that says
how to place the files by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from convcli import __version__
from convcli.errors import DataError, OutputError
from convcli.outputs import atomic_write

DATA_ENV = "CONVCLI_DATA"
MIRROR_ENV = "CONVCLI_MNIST_MIRROR"
DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MIRROR_SCHEMES = ("http", "https", "ftp", "file")  # what urllib.request opens

# md5 of the decompressed IDX content, as published with the original files (shared/data/README.md).
MNIST_MD5: Mapping[str, str] = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}

ProgressCallback = Callable[[int, "int | None", str], None]
"""Called as ``progress(downloaded_bytes, total_bytes_or_None, filename)`` after every chunk."""

_CHUNK = 1 << 16


def cache_dir() -> Path:
    """Root of convcli's data cache: ``$CONVCLI_DATA``, else the platform's user cache directory.

    Linux and other POSIX systems: ``$XDG_CACHE_HOME/convcli``, else ``~/.cache/convcli``;
    macOS: ``~/Library/Caches/convcli``; Windows: ``%LOCALAPPDATA%\\convcli\\Cache``.
    Nothing is created here.
    """
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "convcli" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "convcli"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "convcli"
    return Path.home() / ".cache" / "convcli"


def mirror_url(mirror: str | None = None) -> str:
    """Base URL to fetch MNIST from: ``mirror``, else ``$CONVCLI_MNIST_MIRROR``, else the default.

    Raises `DataError`, naming the option or the variable, for anything but an http, https, ftp
    or file URL.

    >>> mirror_url("http://example.org/mnist")
    'http://example.org/mnist/'
    """
    given = f"--mirror {mirror}" if mirror else f"${MIRROR_ENV}={os.environ.get(MIRROR_ENV)}"
    url = mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in MIRROR_SCHEMES or not (parts.netloc or parts.scheme == "file"):
        raise DataError(f"{given} is not a URL: give one such as {DEFAULT_MIRROR}")
    return url if url.endswith("/") else url + "/"


def manual_hint(directory: Path, names: list[str] | tuple[str, ...]) -> str:
    """How to put the MNIST files in place by hand, for the end of an error message."""
    return (
        f"to install MNIST by hand, download {', '.join(names)} from {DEFAULT_MIRROR} "
        f"(or any MNIST mirror, via --mirror URL or ${MIRROR_ENV}) into {directory}, "
        "or pass --data DIR with a directory of the IDX files (.gz or raw), "
        "a Keras mnist.npz or an image folder"
    )


def fetch_mnist(
    directory: Path,
    *,
    mirror: str | None = None,
    checksums: Mapping[str, str] = MNIST_MD5,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """Make sure every file of ``checksums`` is in ``directory``, downloading the missing ones.

    Parameters
    ----------
    directory
        The MNIST cache directory (``cache_dir() / "mnist"`` by default in `resolve_data`);
        created if needed.
    mirror
        Base URL, see `mirror_url`. Each file is fetched from ``base + name``.
    checksums
        ``{file name: md5 of the gunzipped content}``; the official table by default, injectable
        for tests and for other gzipped data sets.
    progress
        Optional ``progress(downloaded, total_or_None, name)`` callback.
    timeout
        Seconds to wait for the connection and for each read.

    Returns
    -------
    Path
        ``directory``. Files already present are trusted, not downloaded again.

    Raises
    ------
    DataError
        When a download fails, is cut short or fails its checksum; nothing partial is left behind.
    """
    base = mirror_url(mirror)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the data cache directory {directory}: "
            f"{exc.strerror or exc}; set ${DATA_ENV} to a writable directory "
            "or pass --data DIR"
        ) from None
    for name, md5 in checksums.items():
        target = directory / name
        if not target.exists():
            try:
                download_file(base + name, target, md5=md5, progress=progress, timeout=timeout)
            except DataError as exc:
                raise DataError(f"{exc}; {manual_hint(directory, tuple(checksums))}") from None
    return directory


def download_file(
    url: str, target: Path, *, md5: str, progress: ProgressCallback | None = None, timeout: float = 30.0
) -> None:
    """Download the gzip file at ``url`` to ``target`` if its gunzipped content has md5 ``md5``.

    The bytes go through `convcli.outputs.atomic_write`, which renames its temporary file onto
    ``target`` only once the length and the checksum are right, so ``target`` is either absent or
    complete.
    """

    def fetch(out: BinaryIO) -> None:
        _stream(url, out, target.name, progress, timeout)
        out.seek(0)
        actual = gunzipped_md5(out, url)
        if actual != md5:
            raise DataError(
                f"{url}: checksum mismatch, the decompressed content has md5 {actual}, "
                f"expected {md5} (a corrupted or different file; try another mirror)"
            )

    try:
        atomic_write(target, fetch)
    except OutputError as exc:
        raise DataError(str(exc)) from None


def _stream(url: str, out: BinaryIO, name: str, progress: ProgressCallback | None, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": f"convcli/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress is not None:
                progress(done, total, name)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total, name)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DataError(f"cannot reach {url}: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # Timeouts, resets, garbled responses and malformed URLs.
        raise DataError(f"download of {url} failed: {type(exc).__name__}: {exc}") from None
    # http.client returns a short body without complaint when the peer closes early.
    if total is not None and done != total:
        raise DataError(f"{url}: connection closed after {done:,} of {total:,} bytes")


def gunzipped_md5(source: Path | BinaryIO, what: str | None = None) -> str:
    """md5 hex digest of the decompressed content of the gzip file ``source`` (a path, or a
    binary file open at the start of the data).

    Raises `DataError` naming ``what`` (default: ``source``) if the file is not valid gzip.
    """
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with gzip.open(source, "rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{what or source}: not a complete gzip file ({exc})") from None
    return digest.hexdigest()
