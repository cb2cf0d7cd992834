"""Max and average pooling of NCHW batches, windowed and global, forward and backward.

Windowed pooling loops over the ``fh * fw`` taps of the window (`windows.Windows.taps`) and
reduces whole (N, C, oh, ow) slices at a time: for the usual 2x2 that is three ``np.maximum``
calls on strided views, faster than reshaping into windows. Max pooling pads with ``-inf``;
its backward sends each gradient to the first maximum of its window (row-major order), as
PyTorch does. Average pooling divides by the window size, or with ``count_include_pad=False``
by the number of real pixels in the window; a ceil-mode window hanging past the padding counts
only what it covers (PyTorch's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from convcli.errors import InputError, ShapeError
from convcli.ops.choices import POOL_MODES
from convcli.ops.footprint import FLAT_BACKWARD_COPIES, FLAT_BACKWARD_MIN_PIXELS, pool_chunk
from convcli.ops.windows import IntPair, Padding2d, Windows, as_float, crop2d, pad2d, pool_windows
from convcli.threads import map_slices


@dataclass(frozen=True)
class PoolCache:
    """What `pool2d_backward` needs from the forward pass; treat as opaque.

    ``argmax`` holds, per output pixel, the tap index of its window's first maximum (max mode);
    ``divisor`` the (oh, ow) window counts or one number (avg mode). Its size, from shapes alone,
    is `convcli.ops.footprint.pool_footprint`'s (tests/nn/test_memory.py holds them equal).
    """

    g: Windows
    shape: tuple[int, ...]
    dtype: np.dtype
    argmax: np.ndarray | None = None
    divisor: np.ndarray | float = 1.0


@dataclass(frozen=True)
class GlobalPoolCache:
    """What `global_pool2d_backward` needs: the input shape and, for max, each plane's argmax."""

    shape: tuple[int, ...]
    dtype: np.dtype
    argmax: np.ndarray | None = None


def pool2d(
    x: np.ndarray,
    size: IntPair,
    *,
    stride: IntPair | None = None,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    ceil: bool = False,
    mode: str = "max",
    count_include_pad: bool = True,
) -> np.ndarray:
    """Pool each channel over ``size`` windows.

    Parameters
    ----------
    x : (N, C, H, W) array; (C, H, W) and (H, W) are pooled as they are.
    size, stride, dilation : int or (h, w) pair; ``stride`` defaults to ``size``.
    padding : as `convcli.ops.conv.conv2d`, at most half the window on each side.
    ceil : keep a last partial window (PyTorch ``ceil_mode``).
    mode : ``"max"`` or ``"avg"``.
    count_include_pad : average over padding zeros too (PyTorch's default).

    Examples
    --------
    >>> x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    >>> pool2d(x, 2)
    array([[9., 2.],
           [6., 3.]], dtype=float32)
    >>> pool2d(x, 2, mode="avg")
    array([[3.75, 1.25],
           [3.75, 2.  ]], dtype=float32)
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3, 4):
        raise ShapeError(f"pool2d: x has shape {x.shape}, expected (N, C, H, W), (C, H, W) or (H, W)")
    x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)
    y, _ = _forward(x4, size, stride, padding, dilation, ceil, mode, count_include_pad, keep=False)
    return y.reshape(y.shape[4 - x.ndim :])


def pool2d_forward(
    x: np.ndarray,
    size: IntPair,
    *,
    stride: IntPair | None = None,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    ceil: bool = False,
    mode: str = "max",
    count_include_pad: bool = True,
) -> tuple[np.ndarray, PoolCache]:
    """`pool2d` on an NCHW batch, also returning the cache `pool2d_backward` needs.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, cache = pool2d_forward(x, 2)
    >>> pool2d_backward(np.ones_like(y), cache)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ShapeError(f"pool2d_forward: x has shape {x.shape}, expected (N, C, H, W)")
    y, cache = _forward(x, size, stride, padding, dilation, ceil, mode, count_include_pad, keep=True)
    assert cache is not None  # keep=True always builds one
    return y, cache


def pool2d_backward(dy: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Gradient of a `pool2d_forward` output with respect to its input, shaped like the input."""
    g = cache.g
    dy = np.asarray(dy, dtype=cache.dtype)
    if dy.shape != cache.shape[:2] + (g.oh, g.ow):
        raise ShapeError(
            f"pool2d_backward: dy has shape {dy.shape}, expected the output's {cache.shape[:2] + (g.oh, g.ow)}"
        )
    # windows that tile the plane write every pixel once: nothing to clear first
    tiled = (g.sh, g.sw) == (g.fh, g.fw) and (g.dh, g.dw) == (1, 1) and g.dropped == (0, 0)
    dxp = (np.empty if tiled else np.zeros)(cache.shape[:2] + g.padded, dtype=cache.dtype)  # N, C, Hp, Wp
    image = dxp[0].nbytes * (FLAT_BACKWARD_COPIES if _flat_backward(cache) else 1)
    map_slices(partial(_in_chunks, partial(_backward_chunk, dxp, dy, cache), image), len(dy), dxp.size)
    return crop2d(dxp, g)


def _in_chunks(run: Callable[[slice], None], image_bytes: int, s: slice) -> None:
    """``run`` over the images ``s`` of a batch a few at a time, about `POOL_CHUNK_BYTES` of
    ``image_bytes`` each at once, so that a chunk's passes stay in L2."""
    per = pool_chunk(image_bytes, s.stop - s.start)
    for start in range(s.start, s.stop, per):
        run(slice(start, min(start + per, s.stop)))


def _flat_backward(cache: PoolCache) -> bool:
    """Whether `_max_flat_backward` serves this max pooling: overlapping windows at stride 1 on
    planes of `FLAT_BACKWARD_MIN_PIXELS` or more."""
    g = cache.g
    large = g.padded[0] * g.padded[1] >= FLAT_BACKWARD_MIN_PIXELS
    return cache.argmax is not None and g.overlapping and (g.sh, g.sw) == (1, 1) and large


def _max_flat_backward(dxp: np.ndarray, dy: np.ndarray, argmax: np.ndarray, g: Windows) -> None:
    """Max pooling's backward at stride 1 on the chunk's planes laid end to end, as
    `_max_flat`'s forward: the gradient and the tap index spread out to padded planes, then per
    tap one contiguous masked add into ``dxp`` (zeros in), shifted by the tap's offset (64x16x14x14
    at 3x3, padding 1: 2.7 ms in one ``np.bincount``, 1.2 ms so)."""
    wp = g.padded[1]
    offsets = [rows.start * wp + cols.start for _, _, (rows, cols) in g.taps()]
    length = dxp.size - offsets[-1]
    spread = np.zeros(dxp.shape, dtype=dxp.dtype)  # N, C, Hp, Wp
    spread[..., : g.oh, : g.ow] = dy
    index = np.full(dxp.shape, len(offsets), dtype=argmax.dtype)  # no tap's index past the outputs
    index[..., : g.oh, : g.ow] = argmax
    grad, at = spread.reshape(-1)[:length], index.reshape(-1)[:length]
    hit, part, out = np.empty(length, dtype=bool), np.empty(length, dtype=dxp.dtype), dxp.reshape(-1)
    for t, o in enumerate(offsets):
        np.equal(at, t, out=hit)
        np.multiply(grad, hit, out=part)
        out[o : o + length] += part


def _backward_chunk(dxp: np.ndarray, dy: np.ndarray, cache: PoolCache, s: slice) -> None:
    """`pool2d_backward` for the images ``s``, into their part of ``dxp``."""
    g, dxp, dy = cache.g, dxp[s], dy[s]
    argmax = None if cache.argmax is None else cache.argmax[s]
    if argmax is not None and _flat_backward(cache):
        _max_flat_backward(dxp, dy, argmax, g)
        return
    if argmax is None:
        dy = dy / cache.divisor
    if argmax is not None and g.overlapping:
        dxp[...] = _scatter_max(dy, argmax, g)
        return
    for t, (_, _, (rows, cols)) in enumerate(g.taps()):
        if not g.overlapping:  # disjoint windows: each pixel gets one tap's gradient at most
            np.multiply(dy, 1 if argmax is None else argmax == t, out=dxp[..., rows, cols])
        else:
            dxp[..., rows, cols] += dy if argmax is None else dy * (argmax == t)


def _scatter_max(dy: np.ndarray, argmax: np.ndarray, g: Windows) -> np.ndarray:
    """Max pooling's backward for overlapping windows: every gradient added at the flat index of
    its window's maximum in one ``np.bincount``, instead of a masked add per tap; (N, C, Hp, Wp)
    in float64."""
    (n, c), (hp, wp) = dy.shape[:2], g.padded
    offsets = np.array([i * g.dh * wp + j * g.dw for i, j, _ in g.taps()])  # tap -> offset in the plane
    origin = np.arange(g.oh)[:, None] * (g.sh * wp) + np.arange(g.ow) * g.sw  # oh, ow: each window's corner
    index = offsets[argmax]  # N, C, oh, ow
    index += origin
    index += (np.arange(n * c) * (hp * wp)).reshape(n, c, 1, 1)
    return np.bincount(index.ravel(), weights=dy.ravel(), minlength=n * c * hp * wp).reshape(n, c, hp, wp)


def global_pool2d(x: np.ndarray, mode: str = "avg") -> np.ndarray:
    """Pool each (H, W) plane of an NCHW batch to one number: (N, C, 1, 1).

    >>> global_pool2d(np.arange(8.0).reshape(1, 2, 2, 2), "max").ravel()
    array([3., 7.])
    """
    return global_pool2d_forward(x, mode)[0]


def global_pool2d_forward(x: np.ndarray, mode: str = "avg") -> tuple[np.ndarray, GlobalPoolCache]:
    """`global_pool2d`, also returning the cache `global_pool2d_backward` needs."""
    _check_mode(mode, "global_pool2d")
    x = as_float(x, "global_pool2d: x")
    if x.ndim != 4:
        raise ShapeError(f"global_pool2d: x has shape {x.shape}, expected (N, C, H, W)")
    if mode == "avg":
        return x.mean(axis=(2, 3), keepdims=True), GlobalPoolCache(x.shape, x.dtype)
    flat = x.reshape(x.shape[:2] + (-1,))  # N, C, H*W
    argmax = flat.argmax(axis=-1)[..., None]  # N, C, 1
    y = np.take_along_axis(flat, argmax, axis=-1)[..., None]
    return y, GlobalPoolCache(x.shape, x.dtype, argmax)


def global_pool2d_backward(dy: np.ndarray, cache: GlobalPoolCache) -> np.ndarray:
    """Gradient of a `global_pool2d_forward` output (N, C, 1, 1) with respect to its input."""
    (n, c, h, w), dy = cache.shape, np.asarray(dy, dtype=cache.dtype)
    if dy.shape != (n, c, 1, 1):
        raise ShapeError(f"global_pool2d_backward: dy has shape {dy.shape}, expected {(n, c, 1, 1)}")
    if cache.argmax is None:
        return np.broadcast_to(dy / (h * w), cache.shape).copy()
    dx = np.zeros((n, c, h * w), dtype=cache.dtype)
    np.put_along_axis(dx, cache.argmax, dy.reshape(n, c, 1), axis=-1)
    return dx.reshape(cache.shape)


def _check_mode(mode: str, what: str) -> None:
    if mode not in POOL_MODES:
        raise InputError(f"{what}: mode={mode!r} is not one of {', '.join(POOL_MODES)}")


def _forward(
    x: np.ndarray,
    size: IntPair,
    stride: IntPair | None,
    padding: Padding2d,
    dilation: IntPair,
    ceil: bool,
    mode: str,
    count_include_pad: bool,
    keep: bool,
) -> tuple[np.ndarray, PoolCache | None]:
    _check_mode(mode, "pool2d")
    x = as_float(x, "pool2d: x")
    g = pool_windows(x.shape[2], x.shape[3], size, stride, padding, dilation, ceil)
    taps = [at for _, _, at in g.taps()]
    y = np.empty(x.shape[:2] + (g.oh, g.ow), dtype=x.dtype)  # N, C, oh, ow
    divisor = _divisor(g, count_include_pad, x.dtype) if mode == "avg" else 1.0
    index = np.min_scalar_type(len(taps) - 1).type
    argmax = np.zeros(y.shape, dtype=index) if keep and mode == "max" else None  # N, C, oh, ow
    work = x.size * len(taps)
    chunk = partial(_pool_chunk, x, g.margins, taps, mode, divisor, y, argmax)
    map_slices(partial(_in_chunks, chunk, x[0].nbytes), len(x), work)
    if mode == "avg":
        return y, (PoolCache(g, x.shape, x.dtype, divisor=divisor) if keep else None)
    return y, (PoolCache(g, x.shape, x.dtype, argmax=argmax) if argmax is not None else None)


def _pool_chunk(
    x: np.ndarray,
    margins: tuple[int, int, int, int],
    taps: list[tuple[slice, slice]],
    mode: str,
    divisor: np.ndarray | float,
    y: np.ndarray,
    argmax: np.ndarray | None,
    s: slice,
) -> None:
    """Pool the images ``s`` of the batch, padded by ``margins``, into their part of ``y`` (and of
    ``argmax``)."""
    xp, y = pad2d(x[s], margins, value=-np.inf if mode == "max" else 0.0), y[s]  # N, C, Hp, Wp
    if mode == "max" and all(t.step == 1 for tap in taps for t in tap):
        _max_flat(xp, taps, y, None if argmax is None else argmax[s])
        return
    (rows0, cols0), rest = taps[0], taps[1:]
    np.copyto(y, xp[..., rows0, cols0])
    reduce = np.maximum if mode == "max" else np.add
    for rows, cols in rest:
        reduce(y, xp[..., rows, cols], out=y)
    if mode == "avg":
        y /= divisor
    if argmax is None:
        return
    argmax, index = argmax[s], argmax.dtype.type
    searching = xp[..., rows0, cols0] != y  # windows whose first maximum is still to be found
    for t, (rows, cols) in enumerate(rest, start=1):
        hit = xp[..., rows, cols] == y
        hit &= searching
        searching ^= hit
        argmax += hit * index(t)  # masks and adds: several times faster than copyto(where=)


def _max_flat(xp: np.ndarray, taps: list[tuple[slice, slice]], y: np.ndarray, argmax: np.ndarray | None) -> None:
    """Max pooling at stride 1 on the chunk's planes laid end to end: tap (i, j) of the output at
    flat position ``q`` is the input at ``q + i*dh*Wp + j*dw``, so each tap is one contiguous
    pass over the chunk (the outputs past each plane's (oh, ow) corner are computed, then
    dropped). A tap that beats the running maximum, strictly, is the window's first maximum so
    far in row-major order. 64x40x7x7 at 3x3, padding 1: 2.1 ms per tap on strided (oh, ow)
    views, 1.0 ms so."""
    (oh, ow), wp = y.shape[2:], xp.shape[3]
    flat = xp.reshape(-1)
    offsets = [rows.start * wp + cols.start for rows, cols in taps]
    length = flat.size - offsets[-1]
    full = np.empty(xp.shape, dtype=xp.dtype)  # N, C, Hp, Wp
    top = full.reshape(-1)[:length]
    np.copyto(top, flat[:length])
    if argmax is not None:
        index = np.zeros(xp.shape, dtype=argmax.dtype)
        at, better, step = index.reshape(-1)[:length], np.empty(length, dtype=bool), np.empty_like(top, argmax.dtype)
    for t, o in enumerate(offsets[1:], start=1):
        tap = flat[o : o + length]
        if argmax is not None:
            np.greater(tap, top, out=better)
            np.multiply(better, argmax.dtype.type(t), out=step)
            np.maximum(at, step, out=at)  # taps come in increasing order
        np.maximum(top, tap, out=top)
    np.copyto(y, full[..., :oh, :ow])
    if argmax is not None:
        np.copyto(argmax, index[..., :oh, :ow])


def _divisor(g: Windows, count_include_pad: bool, dtype: np.dtype) -> np.ndarray | float:
    """How many window taps each output averages: inside the padded plane, or only real pixels."""
    top, bottom, left, right = g.pads
    counts = []
    for out, f, s, d, lo, n, hi in (
        (g.oh, g.fh, g.sh, g.dh, top, g.h, bottom),
        (g.ow, g.fw, g.sw, g.dw, left, g.w, right),
    ):
        start, stop = (-lo, n + hi) if count_include_pad else (0, n)
        at = np.arange(out)[:, None] * s - lo + np.arange(f)[None, :] * d  # input index of each tap
        counts.append(((at >= start) & (at < stop)).sum(axis=1))
    divisor = np.outer(*counts)  # oh, ow
    return float(g.fh * g.fw) if (divisor == g.fh * g.fw).all() else divisor.astype(dtype)
