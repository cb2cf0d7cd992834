"""Image gradients from the kernel registry: which kernels make an edge filter, the x/y
responses and their magnitude, the direction of the gradient, and how bright to show it.

An edge filter is an x/y pair of first-derivative kernels from `convcli.images.kernels` (``sobel``
means ``sobel-x`` with ``sobel-y``) or one kernel without a partner, such as the Laplacian. For
a pair the magnitude is ``sqrt(gx^2 + gy^2)``; for a single kernel it is ``|response|``. Every
plane of a ``(C, H, W)`` volume is filtered on its own, keeping its size (``same`` padding).
`convcli.images.edges` runs these on image files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.errors import InputError
from convcli.images.kernels import KERNELS, Kernel, get_kernel
from convcli.ops.bands import map_bands
from convcli.ops.filters import filter2d, gradient_magnitude

PAIRS = ("sobel", "scharr", "prewitt", "roberts")
"""Pair names: ``sobel`` means ``sobel-x`` with ``sobel-y``."""
EDGE_KINDS = ("edge", "laplacian")
WHITE_PERCENTILE = 99.5
"""Magnitudes at or above this percentile are shown white (scale ``abs``)."""


@dataclass(frozen=True)
class EdgeFilter:
    """An x kernel and its partner (None for a single kernel such as the Laplacian)."""

    name: str
    x: Kernel
    y: Kernel | None


def edge_filter(name: str) -> EdgeFilter:
    """The edge filter called ``name``: a pair name, either half of a pair, or a single kernel.

    >>> f = edge_filter("sobel-y")
    >>> f.name, f.x.name, f.y.name
    ('sobel', 'sobel-x', 'sobel-y')
    >>> edge_filter("laplacian").y is None
    True
    """
    key = str(name).strip().lower()
    if key in PAIRS:
        return EdgeFilter(key, KERNELS[f"{key}-x"], KERNELS[f"{key}-y"])
    try:
        kernel = get_kernel(key)
    except InputError as err:
        raise InputError(f"--filter: {err} (pairs: {', '.join(PAIRS)})") from None
    if kernel.kind not in EDGE_KINDS:
        edges = ", ".join(k.name for k in KERNELS.values() if k.kind in EDGE_KINDS)
        raise InputError(
            f"--filter {name!r} is a {kernel.kind} kernel, not an edge filter "
            f"({edges}); apply it with 'convcli conv --kernel {kernel.name}'"
        )
    if kernel.partner is None:
        return EdgeFilter(kernel.name, kernel, None)
    partner = KERNELS[kernel.partner]
    x, y = (partner, kernel) if kernel.name.endswith("-y") or kernel.name == "horizontal" else (kernel, partner)
    stem = x.name[:-2] if x.name.endswith("-x") else f"{x.name}/{y.name}"
    return EdgeFilter(stem, x, y)


@dataclass(frozen=True)
class EdgeMaps:
    """Responses of one ``(C, H, W)`` volume: ``gx``/``gy`` (None unless asked for) and the magnitude."""

    magnitude: np.ndarray
    gx: np.ndarray | None = None
    gy: np.ndarray | None = None


def edge_maps(volume: np.ndarray, filt: EdgeFilter, mode: str = "reflect", components: bool = False) -> EdgeMaps:
    """Filter every (H, W) plane of ``volume``; the size is kept (``same`` padding).

    ``components`` keeps the signed x/y responses (for the panel and the orientation); without
    it a pair runs as one fused pass (`convcli.ops.filters.gradient_magnitude`).

    >>> step = np.array([[1.0, 1.0, 0.0, 0.0]] * 3)
    >>> edge_maps(step, edge_filter("sobel"), "replicate").magnitude[1]
    array([0., 4., 4., 0.])
    """
    kx = filt.x.array()
    if filt.y is None:
        gx = filter2d(volume, kx, mode=mode)
        return EdgeMaps(np.abs(gx), gx if components else None)
    ky = filt.y.array()
    if not components:
        return EdgeMaps(gradient_magnitude(volume, kx, ky, mode=mode))
    gx, gy = filter2d(volume, kx, mode=mode), filter2d(volume, ky, mode=mode)
    return EdgeMaps(np.hypot(gx, gy), gx, gy)


def orientation_degrees(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Direction in which brightness rises, degrees counter-clockwise from +x, in (-180, 180].

    Our x kernels are positive where brightness *falls* to the right and y kernels where it falls
    downward (`convcli.images.kernels`), so the gradient in x-right, y-up axes is ``(-gx, gy)``.

    >>> orientation_degrees(np.array([-1.0, 0.0]), np.array([0.0, 1.0]))
    array([ 0., 90.])
    """
    return np.degrees(np.arctan2(gy, -gx))


def display_reference(magnitude: np.ndarray) -> float | None:
    """The magnitude shown as white: its 99.5th percentile (None if the image has no edges).

    Exactly ``np.percentile(magnitude, 99.5)`` (linear interpolation between the two order
    statistics around rank ``0.995 (n - 1)``), found without sorting or copying the whole: a
    sparse regular sample gives a value below the percentile with room to spare (the sample's
    99th percentile), the values at or above it (about 1% of them, gathered band by band on
    every core) are all that is partitioned, and their count confirms that the bracket held
    (if it did not, the whole is partitioned).

    >>> display_reference(np.arange(1001.0))
    995.0
    """
    values = np.ravel(magnitude)
    if not values.size:
        return None
    rank = WHITE_PERCENTILE / 100 * (values.size - 1)
    below = int(rank)  # values[below] and values[below + 1] of the sorted whole straddle the rank
    tail = _at_least(values, _bracket(values))
    if tail.size < values.size - below:  # the sample misled: fewer values above it than needed
        tail = values
    first = below - (values.size - tail.size)  # the rank of sorted[below] within the tail
    pair = np.partition(tail, [first, min(first + 1, tail.size - 1)])[first : first + 2].astype(np.float64)
    ref = float(pair[0] + (pair[-1] - pair[0]) * (rank - below))
    if ref <= 0:
        ref = float(values.max())
    return ref if ref > 0 else None


BRACKET_SAMPLE = 100_000
"""Values sampled to bracket the percentile: plenty to place the 99th percentile below the 99.5th."""
BRACKET_PERCENTILE = 99.0


def _bracket(values: np.ndarray) -> float:
    """A value that, with near certainty, at least twice as many values reach as reach the
    99.5th percentile: the 99th percentile of a regular sample of ``values``."""
    sample = values[:: max(1, values.size // BRACKET_SAMPLE)].copy()
    k = int(BRACKET_PERCENTILE / 100 * (sample.size - 1))
    return float(np.partition(sample, k)[k])


def _at_least(values: np.ndarray, low: float) -> np.ndarray:
    """The values ``>= low``, in no particular order: bands on threads, chunks that stay in cache."""
    chunk = 1 << 16

    def band(first: int, end: int) -> list[np.ndarray]:
        return [part[part >= low] for part in (values[i : min(i + chunk, end)] for i in range(first, end, chunk))]

    return np.concatenate([part for parts in map_bands(band, values.size, min_rows=1 << 20) for part in parts])
