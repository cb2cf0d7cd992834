"""Work on an image split into bands of rows, one band per thread.

numpy's elementwise loops, zlib's deflate and Pillow's decoders release the GIL on large
buffers, so threads that each take a band of rows keep every core busy without copying the image
into other processes. A band is a pair ``(first row, end row)``; :func:`map_bands` runs a function
on each and returns the results in row order.

Threads are started per call (a thread costs tens of microseconds against milliseconds of work
per band), the first band runs in the calling thread, and an exception in any band is raised in
the caller.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MIN_BAND_ROWS = 64
"""Bands below this many rows are not worth a thread of their own."""


def thread_count() -> int:
    """Cores this process may run on (its CPU affinity where the system reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


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

    ``threads`` defaults to :func:`thread_count`; 1 runs everything in the calling thread.

    >>> map_bands(lambda r0, r1: list(range(r0, r1)), 5, threads=2, min_rows=1)
    [[0, 1], [2, 3, 4]]
    """
    bands = row_bands(height, thread_count() if threads is None else threads, min_rows)
    results: list = [None] * len(bands)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work(*bands[i])
        except BaseException as exc:  # re-raised in the caller, below
            errors.append(exc)

    others = [threading.Thread(target=run, args=(i,)) for i in range(1, len(bands))]
    for thread in others:
        thread.start()
    run(0)
    for thread in others:
        thread.join()
    if errors:
        raise errors[0]
    return results
