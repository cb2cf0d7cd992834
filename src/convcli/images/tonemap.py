"""Mapping any real array to [0, 1] for an 8- or 16-bit image, by an explicit, documented rule.

A signed filter response cannot go to an 8-bit file as it is: OpenCV saturates it, ImageMagick
clips it and scipy wraps it around. :func:`to_display` makes the choice explicit (:data:`SCALES`).
"""

from __future__ import annotations

import numpy as np

from convcli.errors import OutputError
from convcli.images.choices import SCALES


def to_display(array: np.ndarray, scale: str, reference: float | None = None) -> np.ndarray:
    """Map any real array to [0, 1] for an 8- or 16-bit image, by an explicit rule.

    ``ref`` below is ``reference`` if given, else ``max|x|`` over the whole array (all channels
    together, so colours keep their balance). Results are clipped to [0, 1].

    - ``abs``: ``|x| / ref``. Edge strength whatever its sign; zero is black.
    - ``minmax``: ``(x - min) / (max - min)``. Uses the full range; zero lands anywhere.
    - ``offset``: ``0.5 + x / (2 ref)``. Zero is mid-grey, negative darker, positive lighter.
    - ``clip``: ``x`` clipped to [0, 1]. For data already in image range.

    A constant array never divides by zero: ``abs`` and ``minmax`` give 0, ``offset`` gives 0.5.

    Parameters
    ----------
    array
        Any shape, finite values.
    scale
        One of ``abs``, ``minmax``, ``offset``, ``clip``.
    reference
        A positive value used instead of ``max|x|`` for ``abs`` and ``offset`` (the same
        reference for several images makes them comparable).

    Raises
    ------
    OutputError
        For an unknown scale, a reference that is not positive or given with ``minmax``/``clip``,
        or NaN/infinite values.

    Examples
    --------
    >>> to_display(np.array([-2.0, 0.0, 1.0]), "offset")
    array([0.  , 0.5 , 0.75], dtype=float32)
    >>> to_display(np.array([-2.0, 0.0, 1.0]), "abs")
    array([1. , 0. , 0.5], dtype=float32)
    """
    if scale not in SCALES:
        raise OutputError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    x = np.array(array, dtype=np.float64)  # a copy of our own: every step below works in place
    lo, hi = (x.min(), x.max()) if x.size else (0.0, 0.0)  # NaN and infinities show in these two
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise OutputError("cannot map NaN or infinite values to an image; write .npy or .tif")
    if reference is not None:
        if scale not in ("abs", "offset"):
            raise OutputError(f"a reference applies to scale abs or offset, not {scale!r}")
        if not (np.isfinite(reference) and reference > 0):
            raise OutputError(f"scale reference must be positive, got {reference}")
    if x.size == 0 or scale == "clip":
        np.clip(x, 0.0, 1.0, out=x)
    elif scale == "minmax":
        if hi > lo:
            x -= lo
            x /= hi - lo
        else:
            x.fill(0.0)
    else:
        ref = reference if reference is not None else max(-lo, hi)
        if ref <= 0:
            x.fill(0.0 if scale == "abs" else 0.5)
        elif scale == "abs":
            np.abs(x, out=x)
            x /= ref
        else:
            x /= 2 * ref
            x += 0.5
        np.clip(x, 0.0, 1.0, out=x)
    return x.astype(np.float32)
