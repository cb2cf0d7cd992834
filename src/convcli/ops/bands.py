"""Work on an image split into bands of rows, one band per core.

numpy's elementwise loops, zlib's deflate and Pillow's decoders release the GIL on large
buffers, so threads that each take a band of rows keep every core busy without copying the image
into other processes. A band is a pair ``(first row, end row)``; :func:`map_bands` runs a function
on each, on the process's one pool (`convcli.threads.map_parts`), and returns the results in row
order; an exception in any band is raised in the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from convcli.threads import map_parts, workers

T = TypeVar("T")
MIN_BAND_ROWS = 64
"""Bands below this many rows are not worth a thread of their own."""


def row_bands(height: int, parts: int, min_rows: int = MIN_BAND_ROWS) -> list[tuple[int, int]]:
    """``height`` rows cut into at most ``parts`` contiguous bands of nearly equal size, none
    below ``min_rows`` rows unless there is only one.

    >>> row_bands(10, 3, min_rows=1)
    [(0, 3), (3, 6), (6, 10)]
    >>> row_bands(100, 4)
    [(0, 100)]
    """
    n = max(1, min(parts, height // max(1, min_rows)))
    cuts = [height * k // n for k in range(n + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def map_bands(
    work: Callable[[int, int], T], height: int, threads: int | None = None, min_rows: int = MIN_BAND_ROWS
) -> list[T]:
    """``[work(r0, r1) for (r0, r1) in row_bands(height, threads)]``, the bands run in parallel.

    ``threads`` (bands) defaults to `convcli.threads.workers`; 1 runs everything in the calling
    thread.

    >>> map_bands(lambda r0, r1: list(range(r0, r1)), 5, threads=2, min_rows=1)
    [[0, 1], [2, 3, 4]]
    """
    bands = row_bands(height, workers() if threads is None else threads, min_rows)
    return map_parts(lambda band: work(*band), bands)
