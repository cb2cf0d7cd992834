"""The CPU cores a batch is spread over: one thread pool, contiguous slices of the batch.

Most of a training step is per image: convolution, pooling, batch norm's normalisation,
activations, residual sums. numpy releases the GIL inside its loops and OpenBLAS inside its
products, so `map_slices` cuts the batch into contiguous slices, one for each of `workers()`
threads, and the calling thread and the pool's take them in turn. Every op that uses it writes
each slice's part of one preallocated output, or returns per-slice partial results that the
caller combines in slice order: which thread ran a slice never matters, and with the same worker
count a run is bit for bit the same. (More, smaller slices than threads measured no faster, and
would make the memory the slices hold at once depend on the order the threads take them.)

OpenBLAS runs its own threads for a large product. While the pool is busy each slice's products
run on one BLAS thread: two pool threads times two BLAS threads would oversubscribe the cores,
and OpenBLAS's thread server takes one multithreaded call at a time. Its thread count is global
to the process (``openblas_set_num_threads_local`` is too, in its pthreads builds), so it is set
to 1 for as long as the pool exists rather than switched around every split op: switched, the
fully connected layers get both cores, but OpenBLAS's idle threads spin for their next job while
the pool's threads work (benchmarks/bench_threads.py, a training step at batch 64 on 2 cores:
mnist-cnn 22 ms held, 39 ms switched; mnist-resnet 84 ms against 106 ms).

``CONVCLI_THREADS`` overrides the worker count; 1 runs everything inline, with no pool and
OpenBLAS left alone.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from convcli.errors import InputError

ENV = "CONVCLI_THREADS"
"""The environment variable that overrides `workers`."""
MIN_SLICE_NUMBERS = 2**18
"""Numbers of work per slice below which `map_slices` runs inline: handing a slice to a thread
costs some 15-50 us (50-100 us measured on a 2-core Xeon VM), and on a busy machine the pool's
thread may start late. A batch norm pass, a few cheap elementwise ops, weighs one array's numbers:
its passes ran faster split from 64x16x28x28 (800k numbers) on, slower at 64x32x14x14."""

T = TypeVar("T")
P = TypeVar("P")

_override: list[int] = []  # `using`'s stack
_inside = threading.local()  # set in a slice's thread while it runs: nested calls run inline
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def workers() -> int:
    """Threads a batch is split over: `using`'s count, else ``CONVCLI_THREADS``, else the CPUs
    this process may run on (``os.sched_getaffinity`` where it exists, as a container or
    ``taskset`` limits it; ``os.cpu_count`` elsewhere).

    >>> with using(3):
    ...     workers()
    3
    """
    if _override:
        return _override[-1]
    value = os.environ.get(ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"{ENV}={value!r} must be a positive whole number of threads")
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@contextmanager
def using(n: int) -> Iterator[None]:
    """Run with ``n`` workers inside the block (tests, benchmarks), whatever the environment says."""
    if n < 1:
        raise InputError(f"using: n={n} must be a positive whole number of threads")
    _override.append(n)
    try:
        yield
    finally:
        _override.pop()


def split_batch(n: int, parts: int) -> list[slice]:
    """``n`` images as ``parts`` contiguous slices whose sizes differ by one at most, the larger first.

    >>> split_batch(10, 3)
    [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
    """
    size, extra = divmod(n, parts)
    bounds = [0]
    for k in range(parts):
        bounds.append(bounds[-1] + size + (k < extra))
    return [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def slices_for(n: int, numbers: int) -> list[slice]:
    """How `map_slices` cuts a batch of ``n`` whose work is ``numbers`` numbers in all: one slice
    per worker, fewer when a slice would get less than `MIN_SLICE_NUMBERS`; one (inline) on one
    worker or inside another slice's work."""
    k = workers()
    if k == 1 or getattr(_inside, "active", False):
        return [slice(0, n)]
    parts = min(k, n, numbers // MIN_SLICE_NUMBERS)
    return split_batch(n, max(parts, 1))


def map_slices(fn: Callable[[slice], T], n: int, numbers: int) -> list[T]:
    """``[fn(s) for s in slices_for(n, numbers)]``: `map_parts` over the slices of a batch of
    ``n`` whose work is ``numbers`` numbers (read, written or multiplied), which decides whether
    it is split at all.

    >>> map_slices(lambda s: (s.start, s.stop), 8, 0)  # too little work: one slice, inline
    [(0, 8)]
    """
    return map_parts(fn, slices_for(n, numbers))


def map_parts(fn: Callable[[P], T], parts: Sequence[P]) -> list[T]:
    """``[fn(p) for p in parts]``, this thread and the pool's taking the next part in turn until
    none is left (a pool thread that other processes keep off the cores until this thread is done
    with its part leaves it the next one); results in the parts' order. A backward runs over the
    parts its forward made. Inside another part's work, or with one part, it runs inline."""
    if len(parts) == 1 or getattr(_inside, "active", False):
        return [fn(p) for p in parts]
    results: list[T | None] = [None] * len(parts)
    order = itertools.count()  # next() on it is atomic: each part is taken once

    def take() -> None:
        _inside.active = True
        try:
            while (k := next(order)) < len(parts):
                results[k] = fn(parts[k])
        finally:
            _inside.active = False

    helpers = min(workers(), len(parts)) - 1
    pool = _executor(helpers)
    futures = [pool.submit(take) for _ in range(helpers)]
    try:
        take()
    finally:  # never leave a part running into the caller's next step, even on an error
        for f in futures:
            f.result()
    return results  # type: ignore[return-value]  # every part has run


def _executor(threads: int) -> ThreadPoolExecutor:
    """The process's pool, with at least ``threads`` threads; OpenBLAS held to one thread from
    its creation on."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < threads:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool, _pool_size = ThreadPoolExecutor(threads, thread_name_prefix="convcli"), threads
            set_blas_threads(1)
        return _pool


def _forget_pool() -> None:
    """In a forked child the pool's threads are gone: the next split makes a new pool."""
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def set_blas_threads(n: int) -> bool:
    """Set OpenBLAS's thread count for the process; False (and nothing done) when numpy's BLAS
    is not an OpenBLAS this can find."""
    setter = _blas_setter()
    if setter is None:
        return False
    setter(n)
    return True


_setter_cache: list[Callable[[int], object] | None] = []


def _blas_setter() -> Callable[[int], object] | None:
    """OpenBLAS's ``set_num_threads`` in the library numpy loaded: found, as threadpoolctl finds
    it, among the process's loaded libraries (``/proc/self/maps`` on Linux; numpy's bundled
    ``numpy.libs`` or ``.dylibs`` elsewhere), under scipy-openblas's name or plain OpenBLAS's."""
    if not _setter_cache:
        _setter_cache.append(_find_setter())
    return _setter_cache[0]


SETTER_NAMES = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")


def _find_setter() -> Callable[[int], object] | None:
    import numpy as np

    for path in _openblas_paths(Path(np.__file__).parent):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for name in SETTER_NAMES:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                return setter
    return None


def _openblas_paths(numpy_dir: Path) -> list[Path]:
    maps = Path("/proc/self/maps")
    if sys.platform.startswith("linux") and maps.exists():
        found = {line.split(maxsplit=5)[-1].strip() for line in maps.read_text().splitlines() if "openblas" in line}
        return sorted(Path(p) for p in found if p.startswith("/"))
    bundled = [numpy_dir.parent / "numpy.libs", numpy_dir / ".dylibs"]
    return sorted(p for d in bundled if d.is_dir() for p in d.iterdir() if "openblas" in p.name)
