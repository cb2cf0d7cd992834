"""Bilinear resampling of a 2-D map onto another grid whose axes are the map's, scaled and shifted.

Output pixel ``o`` of an axis (centre ``o + 0.5``) reads the map at ``u = offset + scale * (o +
0.5)`` in the map's pixel-edge coordinates, interpolating linearly between the two nearest pixel
centres (held at the outermost centre near an edge); a point outside ``[0, n)`` reads 0. With
``scale = n_in / n_out`` and offset 0 this is PyTorch's ``interpolate(mode="bilinear",
align_corners=False)`` (and OpenCV's ``resize(INTER_LINEAR)``), which clamp between the
outermost centres and the border as this does. Each axis is one sparse matrix of weights, so a
resampling is ``Ry @ map @ Rx.T``.
"""

from __future__ import annotations

import numpy as np


def axis_weights(n_out: int, n_in: int, scale: float, offset: float = 0.0) -> np.ndarray:
    """The ``(n_out, n_in)`` weights of one axis: row ``o`` holds the interpolation weights of
    output pixel ``o``, summing to 1 inside the map and to 0 outside.

    >>> axis_weights(4, 2, 0.5)   # 2 pixels stretched to 4
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    u = offset + scale * (np.arange(n_out) + 0.5)  # where each output centre falls, in edges
    c = np.clip(u - 0.5, 0, n_in - 1)  # ... in centres, held at the outermost centres
    lo = np.floor(c).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    t = c - lo
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, lo), 1 - t)
    np.add.at(weights, (rows, hi), t)
    weights[(u < 0) | (u >= n_in)] = 0
    return weights


def resample(
    a: np.ndarray,
    out_shape: tuple[int, int],
    scale: tuple[float, float],
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """``a`` (H, W) sampled bilinearly on an ``out_shape`` grid whose pixel ``(i, j)`` lies at
    ``offset + scale * (i + 0.5, j + 0.5)`` in ``a``; points off ``a`` read 0.

    >>> resample(np.array([[0.0, 1.0]]), (1, 4), scale=(1.0, 0.5))
    array([[0.  , 0.25, 0.75, 1.  ]])
    """
    ry = axis_weights(out_shape[0], a.shape[0], scale[0], offset[0])
    rx = axis_weights(out_shape[1], a.shape[1], scale[1], offset[1])
    return ry @ np.asarray(a, np.float64) @ rx.T
