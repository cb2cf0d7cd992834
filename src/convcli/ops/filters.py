"""Filtering images plane by plane with one 2-D kernel: the path of the edges and conv commands.

`filter2d` applies the same kernel to every (H, W) plane of an array, with a border mode.
Rank-1 kernels (Sobel, Scharr, Prewitt, box, binomial Gaussian) run as two 1-D passes
(`correlate_separable`): ``fh + fw`` taps instead of ``fh * fw``. The passes walk down the image
in strips of rows small enough to stay in cache, with every buffer allocated once: whole-image
passes spend their time streaming (and page-faulting) fresh temporaries through memory. Each strip
is padded on its own (`convcli.ops.windows.strip_padder`), so no padded copy of the image is made,
and bands of rows run on threads of their own (`convcli.ops.bands`). For the
Sobel magnitude of a 12-megapixel image that measured 27 ms against 45 ms whole-image, 137 ms for
scipy.ndimage and 20 ms for OpenCV on 2 threads (benchmarks/bench_ops.py). Other kernels go to
`convcli.ops.conv.conv2d`. `gradient_magnitude` fuses an x/y pair and ``sqrt(gx^2 + gy^2)``
into the same strips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convcli.errors import ShapeError
from convcli.ops.bands import map_bands
from convcli.ops.conv import conv2d
from convcli.ops.windows import Padding2d, Windows, as_float, conv_windows, strip_padder

STRIP_BYTES = 1 << 18
"""Size of one strip buffer: a few of them fit in a 1 MiB L2 cache."""
BAND_MIN_ROWS = 256
"""Fewer output rows than twice this run in one thread: a small image is done before a thread starts."""


def rank1_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(col, row)`` with ``np.outer(col, row) == kernel``, or None if the kernel is not rank 1.

    ``col`` is scaled so its smallest non-zero magnitude is 1, which keeps integer kernels
    integer (and their ±1 taps cheap).

    >>> rank1_factors(np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]))
    (array([ 1.,  0., -1.]), array([1., 2., 1.]))
    >>> rank1_factors(np.array([[0, 1], [1, 0]])) is None
    True
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or not k.any():
        return None
    i0, j0 = np.unravel_index(np.abs(k).argmax(), k.shape)
    col, row = k[:, j0].copy(), k[i0, :] / k[i0, j0]
    scale = np.abs(col[col != 0]).min()
    col, row = col / scale, row * scale
    if not np.allclose(np.outer(col, row), k, rtol=0, atol=1e-12 * np.abs(k).max()):
        return None
    return col, row


def filter2d(
    x: np.ndarray, kernel: np.ndarray, *, padding: Padding2d = "same", mode: str = "reflect", flip: bool = False
) -> np.ndarray:
    """Cross-correlate every (H, W) plane of ``x`` with one (fH, fW) kernel.

    Parameters
    ----------
    x : (H, W), (C, H, W), (N, C, H, W) or any (..., H, W) array.
    kernel : (fH, fW) array.
    padding : as `convcli.ops.conv.conv2d`; ``"same"`` keeps the size.
    mode : border mode; the default ``reflect`` is OpenCV's default ``BORDER_REFLECT_101``.
    flip : true convolution (the kernel flipped on both axes).

    Returns
    -------
    Array of shape (..., H', W'), float32 (float64 for a float64 input).

    Examples
    --------
    >>> step = np.array([[9, 9, 0, 0]] * 3)
    >>> filter2d(step, np.array([[1, 0, -1]] * 3), mode="replicate")[1]
    array([ 0., 27., 27.,  0.], dtype=float32)
    """
    planes, g, k = _setup(x, kernel, padding, flip)
    factors = rank1_factors(k)
    if factors is None or min(k.shape) == 1:
        y = conv2d(planes[:, None], k.astype(planes.dtype), padding=padding, mode=mode)[:, 0]
    else:
        y = _separable(planes, mode, [factors], g, magnitude=False)
    return y.reshape(np.shape(x)[:-2] + y.shape[-2:])


def correlate_separable(
    x: np.ndarray, col: Sequence[float], row: Sequence[float], *, padding: Padding2d = "same", mode: str = "reflect"
) -> np.ndarray:
    """`filter2d` with the kernel ``np.outer(col, row)``, always as two 1-D passes.

    >>> correlate_separable(np.eye(3), [1, 2, 1], [1, 0, -1], mode="zeros")
    array([[-1.,  2.,  1.],
           [-2.,  0.,  2.],
           [-1., -2.,  1.]])
    """
    c, r = np.asarray(col, dtype=np.float64), np.asarray(row, dtype=np.float64)
    if c.ndim != 1 or r.ndim != 1 or not c.size or not r.size:
        raise ShapeError(f"correlate_separable: col and row must be non-empty 1-D, got shapes {c.shape} and {r.shape}")
    planes, g, _ = _setup(x, np.outer(c, r), padding, False)
    y = _separable(planes, mode, [(c, r)], g, magnitude=False)
    return y.reshape(np.shape(x)[:-2] + y.shape[-2:])


def gradient_magnitude(
    x: np.ndarray, kernel_x: np.ndarray, kernel_y: np.ndarray, *, padding: Padding2d = "same", mode: str = "reflect"
) -> np.ndarray:
    """``sqrt(gx^2 + gy^2)`` of the responses to an x/y kernel pair, plane by plane.

    >>> sobel_x = np.outer([1, 2, 1], [1, 0, -1])
    >>> gradient_magnitude(np.eye(4), sobel_x, sobel_x.T, mode="replicate")[0] ** 2
    array([ 8., 10.,  2.,  0.])
    """
    kx, ky = np.asarray(kernel_x), np.asarray(kernel_y)
    if kx.shape != ky.shape:
        raise ShapeError(f"gradient_magnitude: kernel shapes differ: {kx.shape} and {ky.shape}")
    fx, fy = rank1_factors(kx), rank1_factors(ky)
    if fx is None or fy is None or min(kx.shape) == 1:
        gx = filter2d(x, kx, padding=padding, mode=mode)
        return np.hypot(gx, filter2d(x, ky, padding=padding, mode=mode))
    planes, g, _ = _setup(x, kx, padding, False)
    y = _separable(planes, mode, [fx, fy], g, magnitude=True)
    return y.reshape(np.shape(x)[:-2] + y.shape[-2:])


def _setup(x: object, kernel: object, padding: Padding2d, flip: bool) -> tuple[np.ndarray, Windows, np.ndarray]:
    """Planes (P, H, W), their windows, and the kernel as applied."""
    x, k = as_float(x, "filter2d: x"), np.asarray(kernel)
    if x.ndim < 2:
        raise ShapeError(f"filter2d: x has shape {x.shape}, expected (..., H, W)")
    if k.ndim != 2 or not k.size:
        raise ShapeError(f"filter2d: kernel has shape {k.shape}, expected (fH, fW)")
    planes = x.reshape((-1,) + x.shape[-2:])
    g = conv_windows(x.shape[-2], x.shape[-1], k.shape[0], k.shape[1], 1, padding, what="filter2d")
    return planes, g, (k[::-1, ::-1] if flip else k)


def _separable(
    planes: np.ndarray, mode: str, factors: list[tuple[np.ndarray, np.ndarray]], g: Windows, magnitude: bool
) -> np.ndarray:
    """Row pass then column pass of each rank-1 kernel on ``(P, H, W)`` planes, strip by strip;
    one kernel's response, or the magnitude of two. Each strip is padded on its own
    (`convcli.ops.windows.strip_padder`), and bands of output rows go to threads
    (`convcli.ops.bands`), each with buffers of its own."""
    n_planes, dtype = planes.shape[0], planes.dtype
    out = np.empty((n_planes, g.oh, g.ow), dtype=dtype)
    wide = g.padded[1]
    strip = max(1, STRIP_BYTES // (dtype.itemsize * n_planes * wide))
    fill = strip_padder(planes, g.margins, mode)

    def band(first: int, end: int) -> None:
        span = strip + g.fh - 1
        padded = np.empty((n_planes, span, wide), dtype=dtype)
        across, across_tmp = np.empty((2, n_planes, span, g.ow), dtype=dtype)  # after the row pass
        down = np.empty((len(factors) + 1, n_planes, strip, g.ow), dtype=dtype)  # responses + scratch
        for r0 in range(first, end, strip):
            rows = min(strip, end - r0)
            src = fill(r0, r0 + rows + g.fh - 1, padded)
            for k, (col, row) in enumerate(factors):
                h = across[:, : rows + g.fh - 1]
                _correlate1d(src, row, -1, h, across_tmp[:, : rows + g.fh - 1])
                dst = out[:, r0 : r0 + rows] if not magnitude else down[k, :, :rows]
                _correlate1d(h, col, -2, dst, down[-1, :, :rows])
            if magnitude:
                gx, gy = down[0, :, :rows], down[1, :, :rows]
                np.multiply(gx, gx, out=gx)
                np.multiply(gy, gy, out=gy)
                np.add(gx, gy, out=gx)
                np.sqrt(gx, out=out[:, r0 : r0 + rows])

    map_bands(band, g.oh, min_rows=max(strip, BAND_MIN_ROWS))
    return out


def _correlate1d(src: np.ndarray, taps: np.ndarray, axis: int, out: np.ndarray, tmp: np.ndarray) -> None:
    """``out = sum_k taps[k] * src shifted by k along axis``, in as few whole-array passes as it can:
    zero taps skipped, ±1 taps added or subtracted first (``[1, 0, -1]`` is one subtraction)."""
    n = out.shape[axis]

    def shifted(k: int) -> np.ndarray:
        index = [slice(None)] * src.ndim
        index[axis] = slice(k, k + n)
        return src[tuple(index)]

    # Python floats, so a float32 image is multiplied in float32 (NEP 50)
    weights = [(k, w) for k, w in enumerate(np.asarray(taps, dtype=np.float64).tolist()) if w != 0]
    weights.sort(key=lambda kw: abs(kw[1]) != 1)  # unit taps first
    if not weights:
        out.fill(0)
        return
    (k0, w0), rest = weights[0], weights[1:]
    if w0 == 1 and rest and abs(rest[0][1]) == 1:
        (k1, w1), rest = rest[0], rest[1:]
        (np.add if w1 == 1 else np.subtract)(shifted(k0), shifted(k1), out=out)
    elif w0 == 1:
        np.copyto(out, shifted(k0))
    else:
        np.multiply(shifted(k0), w0, out=out)
    for k, weight in rest:
        if weight == 1:
            np.add(out, shifted(k), out=out)
        elif weight == -1:
            np.subtract(out, shifted(k), out=out)
        else:
            np.multiply(shifted(k), weight, out=tmp)
            np.add(out, tmp, out=out)
