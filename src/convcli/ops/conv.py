"""2-D convolution of NCHW batches, forward and backward, as matrix products.

``conv2d`` computes the cross-correlation CNNs call convolution (PyTorch's ``conv2d``)::

    y[n, o, r, c] = b[o] + sum_{k, i, j} w[o, k, i, j] * xp[n, g*C_in/G + k, r*s + i*d, c*s + j*d]

where ``xp`` is the padded input, ``g = o // (C_out/G)`` the group of output channel ``o`` and
``G = groups``. ``flip=True`` flips the kernel first: true convolution, as ``scipy.signal.convolve2d``.

Five engines share the work; `choose_engine` picks one by rules measured with
benchmarks/bench_ops.py (its engine rows time every engine on the same layers) and, for the two
that serve the small layers of the digit networks, benchmarks/bench_train.py:

- *pointwise* (1x1 windows, any stride): the input planes, strided if need be, are already the
  columns; one matmul per image ``(C_out, C_in) @ (C_in, oh*ow)`` gives NCHW directly, and the
  weight gradient is a batch of per-image products, summed (a single product over ``N*oh*ow``
  columns is much slower in OpenBLAS).
- *depthwise* (one input and one output channel per group, any stride): per tap, a
  multiply-add of whole planes, each channel scaled by its own weight, on contiguous spans of the
  flattened padded planes as the flat engine reads them (a strided input is first split into its
  ``sh * sw`` phases), a few images at a time so the passes stay in cache. No matmul: each
  output is only ``fh * fw`` multiply-adds, and the work is memory-bound.

- *im2col* (any stride): every window copied into a column (`windows.im2col`), then one batched
  matmul with ``K = C_in/G * fh * fw``. Best for few input channels on rows of 16 pixels or more
  (LeNet's first layer).
- *batch-last* (any stride): the same matmul, but the columns are laid out ``(.., oh, ow, N)``
  with the batch innermost, so each tap copies (and the backward adds back) runs of ``ow * N``
  numbers instead of ``ow``. Costs a transpose of the input and the output; pays off on
  small feature maps, rows under `BATCH_LAST_MAX_WIDTH` pixels (LeNet's second layer: 0.58 ms
  -> 0.36 ms forward, 1.23 ms -> 0.70 ms backward at batch 64).
- *flat* (stride 1, at least `FLAT_MIN_CHANNELS` input channels per group and `FLAT_MIN_PIXELS`
  output pixels): the padded plane is flattened to rows of length ``Wp``; the input seen by tap
  (i, j) for every output pixel is then the contiguous span starting at ``i*Wp + j``, so each tap
  is one matmul on a view, with no copy of the input. The ``Wp - ow`` columns per row computed past
  the edge are thrown away. Faster for wide layers on larger images, and its cache is the padded
  input itself rather than ``fh * fw`` copies of it.

Backward reuses what the forward kept: ``dw = dy @ cols.T`` (posed as OpenBLAS runs it fastest,
see `_weight_grad`) and ``dx = fold(w.T @ dy)``.

Both run the engine on contiguous slices of the batch at once, one per core (`convcli.threads`;
small layers stay whole): each slice writes its part of the output and of ``dx``, and ``dw`` is
the sum of the slices' partial gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from convcli.errors import InputError, ShapeError

# The engine rule and its thresholds live without numpy in ops/footprint.py, which the memory
# estimate of `convcli params --memory` follows too; the thresholds are re-exported here.
from convcli.ops.footprint import BATCH_LAST_MAX_WIDTH, FLAT_MIN_CHANNELS, FLAT_MIN_PIXELS, conv_engine, conv_work  # noqa: F401
from convcli.ops.footprint import engine_fits as footprint_fits
from convcli.ops.windows import (
    IntPair,
    Padding2d,
    Windows,
    as_float,
    col2im,
    column_layout,
    conv_windows,
    crop2d,
    im2col,
    pad2d,
)
from convcli.threads import map_parts, slices_for

DEPTHWISE_BLOCK_BYTES = 2**18
"""Input bytes the depthwise engine runs its taps over at a time: its passes then stay in cache
(64x16x28x28 forward, 3x3 taps: 13 ms in one block of 64 images, 3.4 ms in blocks of 4-8)."""
DW_CHUNK = 1024
"""Columns per partial product when `_weight_grad` splits a long, thin ``dy @ cols.T``."""


@dataclass(frozen=True)
class ConvCache:
    """What `conv2d_backward` needs from the forward pass; treat as opaque.

    ``cols`` is what the engine kept for each slice of the batch (`convcli.threads`), in the
    order of ``slices``: the flat padded input (N, G, C_in/G, Hp*Wp) for the flat engine, the
    windows (G, C_in/G*fh*fw, N*oh*ow) for im2col, (G, C_in/G*fh*fw, oh*ow*N) for batch-last
    (`windows.column_layout`), N the slice's images. Their size, from shapes alone, is
    `convcli.ops.footprint.conv_footprint`'s: change one, change the other (tests/nn/test_memory.py).
    """

    shape: tuple[int, int, int, int]
    g: Windows
    w: np.ndarray
    cols: tuple[np.ndarray, ...]
    slices: tuple[slice, ...]
    groups: int
    bias: bool
    flip: bool
    engine: str


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    mode: str = "zeros",
    flip: bool = False,
) -> np.ndarray:
    """Convolve (cross-correlate) a batch with a bank of kernels.

    Parameters
    ----------
    x : (N, C_in, H, W) array; (C_in, H, W) and (H, W) are taken as one image.
    w : (C_out, C_in/groups, fH, fW) array; (fH, fW) is one kernel, one channel in and out.
    b : (C_out,) bias or None.
    stride, dilation : int or (h, w) pair.
    padding : int, ``(lo, hi)`` for both axes (not PyTorch's ``(pad_h, pad_w)``: write that as
        ``((pad_h, pad_h), (pad_w, pad_w))``), ``((top, bottom), (left, right))``, or ``"valid"``,
        ``"same"`` (stride 1), ``"full"``, ``"tf"`` (TensorFlow SAME); see `convcli.shapes`.
    groups : input and output channels split into this many independent groups
        (``groups == C_in`` is depthwise).
    mode : border mode for the padding: ``zeros``, ``reflect``, ``replicate``, ``circular``
        (alias ``wrap``) or ``symmetric``; see `convcli.ops.windows` for scipy and OpenCV names.
    flip : flip the kernel (true convolution) instead of cross-correlating.

    Returns
    -------
    (N, C_out, H', W') array, float32 (float64 if ``x`` is float64). A (C_in, H, W) input gives
    (C_out, H', W'); an (H, W) input gives (H', W') when C_out is 1.

    Examples
    --------
    The course's vertical edge: a bright left half gives a band of 30 in the middle columns.

    >>> img = np.array([[10, 10, 10, 0, 0, 0]] * 6)
    >>> conv2d(img, np.array([[1, 0, -1]] * 3))[0]
    array([ 0., 30., 30.,  0.], dtype=float32)
    """
    x4, w4, ndim = _as_batch(x, w)
    g, x4, w4, b = _prepare(x4, w4, b, stride, padding, dilation, groups, mode, flip)
    y = _forward(x4, w4, b, g, groups, choose_engine(g, w4, groups), mode)[0]
    if ndim == 4:
        return y
    return y[0, 0] if ndim == 2 and y.shape[1] == 1 else y[0]


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    mode: str = "zeros",
    flip: bool = False,
) -> tuple[np.ndarray, ConvCache]:
    """`conv2d` on an NCHW batch, also returning the cache `conv2d_backward` needs.

    Only ``mode="zeros"`` has a backward, so only it is accepted here.

    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3))
    >>> y, cache = conv2d_forward(x, w, np.zeros(4), padding=1)
    >>> dx, dw, db = conv2d_backward(np.ones_like(y), cache)
    >>> dx.shape, dw.shape, db.shape
    ((2, 3, 8, 8), (4, 3, 3, 3), (4,))
    """
    if mode != "zeros":
        raise InputError(
            f"conv2d_forward: mode={mode!r} has no backward; only mode='zeros' does "
            "(use conv2d for a forward pass with other borders)"
        )
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4:
        raise ShapeError(f"conv2d_forward: x has shape {x.shape}, expected (N, C_in, H, W)")
    g, x, w4, b = _prepare(x, w, b, stride, padding, dilation, groups, mode, flip)
    engine = choose_engine(g, w4, groups)
    y, cols, slices = _forward(x, w4, b, g, groups, engine, mode)
    return y, ConvCache(x.shape, g, w4, cols, slices, groups, b is not None, flip, engine)


def conv2d_backward(
    dy: np.ndarray, cache: ConvCache, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of a `conv2d_forward` output: ``(dx, dw, db)``, ``db`` None without bias.

    ``dy`` has the forward output's shape (N, C_out, H', W'); ``dx`` has the input's, ``dw`` the
    weights' (unflipped, as passed to the forward). ``need_dx=False`` skips the input gradient
    (None), which a network's first layer never needs: a third of that layer's backward.
    """
    g, w, groups = cache.g, cache.w, cache.groups
    dy = np.asarray(dy, dtype=w.dtype)
    if dy.shape != (cache.shape[0], w.shape[0], g.oh, g.ow):
        raise ShapeError(
            f"conv2d_backward: dy has shape {dy.shape}, expected the output's "
            f"{(cache.shape[0], w.shape[0], g.oh, g.ow)}"
        )
    backward = ENGINES[cache.engine][1]
    if len(cache.slices) == 1:
        dxp, dw = backward(dy, w, cache.cols[0], g, groups, need_dx)
        dx = None if dxp is None else np.ascontiguousarray(crop2d(dxp, g))
        db = _bias_grad(dy).sum(axis=0) if cache.bias else None
    else:  # each slice's dx in place, its partial dw and per-image bias sums added in slice order
        dx = np.empty(cache.shape, dtype=w.dtype) if need_dx else None

        def run(part: tuple[slice, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
            s, cols = part
            dxp, dw = backward(dy[s], w, cols, g, groups, need_dx)
            if dx is not None and dxp is not None:
                top, _, left, _ = g.pads
                dx[s] = dxp[..., top : top + g.h, left : left + g.w]
            return dw, _bias_grad(dy[s]) if cache.bias else None

        parts = map_parts(run, list(zip(cache.slices, cache.cols)))
        dw = sum((p[0] for p in parts[1:]), start=parts[0][0])
        db = np.concatenate([p[1] for p in parts]).sum(axis=0) if cache.bias else None
    if cache.flip:
        dw = dw[:, :, ::-1, ::-1]
    return dx, np.ascontiguousarray(dw), db


def _bias_grad(dy: np.ndarray) -> np.ndarray:
    """Each image's sum of ``dy`` per output channel: (N, C_out), summed over N by the caller."""
    return dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2)  # N, C_out, P -> N, C_out


def _as_batch(x: object, w: object) -> tuple[np.ndarray, np.ndarray, int]:
    """Lift (H, W) and (C, H, W) inputs and an (fH, fW) kernel to NCHW; returns x's ndim."""
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim not in (2, 3, 4):
        raise ShapeError(f"conv2d: x has shape {x.shape}, expected (N, C_in, H, W), (C_in, H, W) or (H, W)")
    return x.reshape((1,) * (4 - x.ndim) + x.shape), (w[None, None] if w.ndim == 2 else w), x.ndim


def _prepare(
    x: np.ndarray,
    w: np.ndarray,
    b: object,
    stride: IntPair,
    padding: Padding2d,
    dilation: IntPair,
    groups: int,
    mode: str,
    flip: bool,
) -> tuple[Windows, np.ndarray, np.ndarray, np.ndarray | None]:
    """Check shapes, settle dtypes; returns ``(windows, x, kernel as applied, bias)``."""
    if w.ndim != 4:
        raise ShapeError(f"conv2d: w has shape {w.shape}, expected (C_out, C_in/groups, fH, fW)")
    (_, c_in, h, wd), (c_out, c_per_group, fh, fw) = x.shape, w.shape
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ShapeError(f"conv2d: groups={groups!r} must be a positive integer")
    if c_in % groups or c_out % groups:
        raise ShapeError(f"conv2d: groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if c_per_group * groups != c_in:
        raise ShapeError(
            f"conv2d: w has shape {w.shape}, i.e. {c_per_group} input channels per group, "
            f"but x has C_in={c_in} channels (groups={groups} expects {c_in // groups})"
        )
    x = as_float(x, "conv2d: x")
    w = as_float(w, "conv2d: w").astype(x.dtype, copy=False)
    if b is not None:
        b = as_float(b, "conv2d: b").astype(x.dtype, copy=False)
        if b.shape != (c_out,):
            raise ShapeError(f"conv2d: b has shape {b.shape}, expected (C_out,) = ({c_out},)")
    g = conv_windows(h, wd, fh, fw, stride, padding, dilation)
    return g, x, (w[:, :, ::-1, ::-1] if flip else w), b


def _forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Windows, groups: int, engine: str, mode: str
) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[slice, ...]]:
    """Output (N, C_out, oh, ow), padding ``x`` with border ``mode``, and the engine's column buffer
    for each slice of the batch (`convcli.threads.map_slices`; one slice for small layers), with
    the slices."""
    forward, (n, c_out) = ENGINES[engine][0], (x.shape[0], w.shape[0])
    slices = slices_for(n, conv_work(n, c_out, (g.oh, g.ow), w[0].size))
    if len(slices) == 1:
        y, cols = forward(pad2d(x, g.margins, mode), w, g, groups)
        if b is not None:
            y += b[:, None, None]
        return np.ascontiguousarray(y), (cols,), (slices[0],)
    out = np.empty((n, c_out, g.oh, g.ow), dtype=x.dtype)

    def run(s: slice) -> np.ndarray:
        y, cols = forward(pad2d(x[s], g.margins, mode), w, g, groups)
        if b is None:
            np.copyto(out[s], y)
        else:
            np.add(y, b[:, None, None], out=out[s])
        return cols

    return out, tuple(map_parts(run, slices)), tuple(slices)


def choose_engine(g: Windows, w: np.ndarray, groups: int = 1) -> str:
    """The engine for windows ``g``, weights ``w`` (C_out, C_in/G, fh, fw) and ``groups``, by
    `convcli.ops.footprint.conv_engine`'s rule: pointwise for 1x1 windows, depthwise for one
    input and one output channel per group, flat for stride 1 with enough channels per group and
    output pixels, batch-last for short rows, else im2col."""
    c_out, c_group = w.shape[:2]
    return conv_engine(c_group, c_out // groups, (g.fh, g.fw), (g.sh, g.sw), g.oh, g.ow, g.padded[1])


def engine_fits(name: str, g: Windows, w: np.ndarray, groups: int) -> bool:
    """Whether engine ``name`` can run these windows (`convcli.ops.footprint.engine_fits`)."""
    c_out, c_group = w.shape[:2]
    return footprint_fits(name, c_group, c_out // groups, (g.fh, g.fw), (g.sh, g.sw))


def _flat_taps(g: Windows) -> tuple[int, int, list[tuple[int, int, slice]]]:
    """Row length ``Wp``, flat output length ``L`` and ``(i, j, span)`` per tap: where the tap's
    inputs for the flat output ``y[r*Wp + c]`` (c < ow valid, the rest discarded) sit in the flat
    padded plane."""
    wp = g.padded[1]
    length = (g.oh - 1) * wp + g.ow
    return (
        wp,
        length,
        [
            (i, j, slice(i * g.dh * wp + j * g.dw, i * g.dh * wp + j * g.dw + length))
            for i in range(g.fh)
            for j in range(g.fw)
        ],
    )


def _forward_flat(xp: np.ndarray, w: np.ndarray, g: Windows, groups: int) -> tuple[np.ndarray, np.ndarray]:
    (n, c), c_out = xp.shape[:2], w.shape[0]
    wp, length, taps = _flat_taps(g)
    xf = np.ascontiguousarray(xp).reshape(n, groups, c // groups, -1)  # N, G, C/G, Hp*Wp
    wt = _taps_first(w, groups)  # fh, fw, G, C_out/G, C/G
    y = np.empty((n, groups, c_out // groups, g.oh * wp), dtype=xp.dtype)  # N, G, C_out/G, oh*Wp
    acc, tmp = y[..., :length], None
    np.matmul(wt[0, 0], xf[..., :length], out=acc)
    for i, j, span in taps[1:]:
        tmp = np.matmul(wt[i, j], xf[..., span], out=tmp)
        acc += tmp
    return y.reshape(n, c_out, g.oh, wp)[..., : g.ow], xf


def _backward_flat(
    dy: np.ndarray, w: np.ndarray, xf: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    wp, length, taps = _flat_taps(g)
    dyf = pad2d(dy, (0, 0, 0, wp - g.ow)).reshape(n, groups, c_out // groups, -1)  # N, G, C_out/G, oh*Wp
    dyf = dyf[..., :length]
    wt = _taps_first(w, groups)
    dwt = np.empty_like(wt)  # fh, fw, G, C_out/G, C/G
    dxf = np.zeros_like(xf) if need_dx else None  # N, G, C/G, Hp*Wp
    tmp = None
    for i, j, span in taps:
        dwt[i, j] = np.matmul(dyf, xf[..., span].swapaxes(-1, -2)).sum(axis=0)
        if dxf is not None:
            tmp = np.matmul(wt[i, j].swapaxes(-1, -2), dyf, out=tmp)  # N, G, C/G, L
            dxf[..., span] += tmp
    dw = dwt.transpose(2, 3, 4, 0, 1).reshape(c_out, c // groups, g.fh, g.fw)
    return (None if dxf is None else dxf.reshape((n, c) + g.padded)), dw


def _taps_first(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C/G, fh, fw) weights as one (G, C_out/G, C/G) matrix stack per tap."""
    c_out, c_group, fh, fw = w.shape
    return np.ascontiguousarray(w.reshape(groups, c_out // groups, c_group, fh, fw).transpose(3, 4, 0, 1, 2))


def _forward_columns(
    xp: np.ndarray, w: np.ndarray, g: Windows, groups: int, batch_last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The im2col and batch-last engines: one matmul over `windows.im2col`'s columns."""
    n, c_out = xp.shape[0], w.shape[0]
    order, axes = column_layout(n, g, batch_last)
    cols = im2col(xp, g, batch_last).reshape(groups, -1, n * g.oh * g.ow)  # G, C/G*fh*fw, columns
    y = np.matmul(w.reshape(groups, c_out // groups, -1), cols)  # G, C_out/G, columns
    return y.reshape((c_out,) + axes).transpose(np.argsort(order)), cols


def _backward_columns(
    dy: np.ndarray, w: np.ndarray, cols: np.ndarray, g: Windows, groups: int, need_dx: bool, batch_last: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    order, axes = column_layout(n, g, batch_last)
    dy2 = dy.transpose(order).reshape(groups, c_out // groups, -1)  # G, C_out/G, columns
    dw = _weight_grad(dy2, cols).reshape(w.shape)
    if not need_dx:
        return None, dw
    dcols = np.matmul(w.reshape(groups, c_out // groups, -1).swapaxes(-1, -2), dy2)
    return col2im(dcols.reshape((c, g.fh, g.fw) + axes), g, batch_last), dw


def _weight_grad(dy2: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``dy2 @ cols.T`` per group: (G, M, P) and (G, K, P) to (G, M, K).

    OpenBLAS is sensitive to how this long, thin product is posed (benchmarks/bench_ops.py, engine
    rows). It is taken as ``(cols @ dy2.T).T``, which its AVX-512 (SkylakeX) kernel runs up to 2.5x
    faster than ``dy2 @ cols.T`` (LeNet-5's C3 at batch 64: 0.40 -> 0.16 ms) and its Haswell kernel
    no slower. When M x K is small (a first layer: few filters, few input channels) P is cut into
    a batch of ``P / DW_CHUNK`` short products, then summed: LeNet-5's C1 at batch 64, 6 x 25 over
    P = 50,176, takes 0.70 ms in one product and 0.12 ms in chunks on SkylakeX, about 0.47 ms
    either way on Haswell.
    """
    g, m, p = dy2.shape
    k, q = cols.shape[1], p // DW_CHUNK
    if m < 2 or m * k > 1024 or q < 4:
        return np.matmul(cols, dy2.swapaxes(-1, -2)).swapaxes(-1, -2)
    cut = q * DW_CHUNK
    a = dy2[..., :cut].reshape(g, m, q, DW_CHUNK).transpose(0, 2, 1, 3)  # G, q, M, chunk
    b = cols[..., :cut].reshape(g, k, q, DW_CHUNK).transpose(0, 2, 3, 1)  # G, q, chunk, K
    dw = np.matmul(a, b).sum(axis=1)
    if cut < p:
        dw += np.matmul(dy2[..., cut:], cols[..., cut:].swapaxes(-1, -2))
    return dw


def _forward_pointwise(xp: np.ndarray, w: np.ndarray, g: Windows, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """1x1 windows: one matmul per image on the (strided) planes as they lie, no columns."""
    n, c, c_out = xp.shape[0], xp.shape[1], w.shape[0]
    xs = xp if g.sh == g.sw == 1 else xp[:, :, :: g.sh, :: g.sw][:, :, : g.oh, : g.ow]
    xs = np.ascontiguousarray(xs).reshape(n, groups, c // groups, g.oh * g.ow)  # N, G, C/G, oh*ow
    y = np.matmul(w.reshape(groups, c_out // groups, c // groups), xs)  # N, G, C_out/G, oh*ow
    return y.reshape(n, c_out, g.oh, g.ow), xs


def _backward_pointwise(
    dy: np.ndarray, w: np.ndarray, xs: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    dy4 = dy.reshape(n, groups, c_out // groups, -1)  # N, G, C_out/G, oh*ow
    # a batch of short products, summed: far faster than one product over N*oh*ow
    dw = np.matmul(dy4, xs.swapaxes(-1, -2)).sum(axis=0).reshape(w.shape)  # G, C_out/G, C/G
    if not need_dx:
        return None, dw
    dxs = np.matmul(w.reshape(groups, c_out // groups, -1).swapaxes(-1, -2), dy4).reshape(n, c, g.oh, g.ow)
    if g.padded == (g.oh, g.ow):
        return dxs, dw
    dxp = np.zeros((n, c) + g.padded, dtype=dy.dtype)
    dxp[:, :, :: g.sh, :: g.sw][:, :, : g.oh, : g.ow] = dxs
    return dxp, dw


def _phases(g: Windows) -> tuple[int, int, int, list[tuple[int, int, int, int, slice]]]:
    """The depthwise engine's geometry: phase planes (Hq, Wq), flat output length ``L`` and, per
    tap, ``(i, j, a, b, span)``: the tap reads phase ``(a, b)`` (the padded pixels at rows
    ``a::sh``, columns ``b::sw``) at the contiguous ``span`` of its flat plane, for every output
    pixel ``y[r*Wq + c]`` (c < ow valid, the rest discarded)."""
    hq, wq = -(-g.padded[0] // g.sh), -(-g.padded[1] // g.sw)
    length = (g.oh - 1) * wq + g.ow
    taps = []
    for i, j, _ in g.taps():
        (r, a), (q, b) = divmod(i * g.dh, g.sh), divmod(j * g.dw, g.sw)
        taps.append((i, j, a, b, slice(r * wq + q, r * wq + q + length)))
    return hq, wq, length, taps


def _block(image_bytes: int, n: int) -> int:
    """Images per block for the depthwise engine: about `DEPTHWISE_BLOCK_BYTES` of input."""
    return max(1, min(n, DEPTHWISE_BLOCK_BYTES // image_bytes))


def _forward_depthwise(xp: np.ndarray, w: np.ndarray, g: Windows, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """One input and one output channel per group: per tap, a multiply-add of whole contiguous
    planes, each channel scaled by its own weight. A strided input is first split into its
    ``sh * sw`` phases (one copy), so that every tap reads a contiguous span of one of them."""
    n, c = xp.shape[:2]
    hq, wq, length, taps = _phases(g)
    if g.sh == g.sw == 1:
        phases = np.ascontiguousarray(xp).reshape(1, 1, n, c, hq * wq)
    else:
        phases = np.zeros((g.sh, g.sw, n, c, hq, wq), dtype=xp.dtype)  # sh, sw, N, C, Hq, Wq
        for a in range(g.sh):
            for b in range(g.sw):
                part = xp[:, :, a :: g.sh, b :: g.sw]
                phases[a, b, :, :, : part.shape[2], : part.shape[3]] = part
        phases = phases.reshape(g.sh, g.sw, n, c, hq * wq)
    wt = w.reshape(c, g.fh, g.fw)
    y = np.empty((n, c, g.oh * wq), dtype=xp.dtype)  # N, C, oh*Wq
    nb = _block(c * hq * wq * xp.itemsize, n)
    tmp = np.empty((nb, c, length), dtype=xp.dtype)
    for s0 in range(0, n, nb):  # a few images at a time, so that the taps' passes stay in cache
        acc, part = y[s0 : s0 + nb, :, :length], phases[:, :, s0 : s0 + nb]
        for k, (i, j, a, b, span) in enumerate(taps):
            scale = wt[:, i, j, None]  # C, 1
            if k == 0:
                np.multiply(part[a, b, ..., span], scale, out=acc)
            else:
                acc += np.multiply(part[a, b, ..., span], scale, out=tmp[: len(acc)])
    return y.reshape(n, c, g.oh, wq)[..., : g.ow], phases


def _backward_depthwise(
    dy: np.ndarray, w: np.ndarray, phases: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    n, c = dy.shape[:2]
    hq, wq, length, taps = _phases(g)
    dyf = pad2d(dy, (0, 0, 0, wq - g.ow)).reshape(n, c, -1)[..., :length]  # N, C, L; zeros past ow
    wt = w.reshape(c, g.fh, g.fw)
    dw = np.zeros_like(wt)
    dphases = np.zeros_like(phases) if need_dx else None
    nb = _block(c * hq * wq * dy.itemsize, n)
    tmp = np.empty((nb, c, length), dtype=dy.dtype)
    for s0 in range(0, n, nb):
        d, part = dyf[s0 : s0 + nb], phases[:, :, s0 : s0 + nb]
        for i, j, a, b, span in taps:
            dw[:, i, j] += np.einsum("ncl,ncl->c", d, part[a, b, ..., span])
            if dphases is not None:
                dphases[a, b, s0 : s0 + nb, :, span] += np.multiply(d, wt[:, i, j, None], out=tmp[: len(d)])
    if dphases is None:
        return None, dw.reshape(w.shape)
    if g.sh == g.sw == 1:
        return dphases.reshape((n, c) + g.padded), dw.reshape(w.shape)
    dphases = dphases.reshape(g.sh, g.sw, n, c, hq, wq)
    dxp = np.empty((n, c) + g.padded, dtype=dy.dtype)
    for a in range(g.sh):
        for b in range(g.sw):
            part = dxp[:, :, a :: g.sh, b :: g.sw]
            part[...] = dphases[a, b, :, :, : part.shape[2], : part.shape[3]]
    return dxp, dw.reshape(w.shape)


Forward = Callable[[np.ndarray, np.ndarray, Windows, int], tuple[np.ndarray, np.ndarray]]
"""``(padded x, w, windows, groups) -> (y, cols)``."""
Backward = Callable[[np.ndarray, np.ndarray, np.ndarray, Windows, int, bool], tuple[np.ndarray | None, np.ndarray]]
"""``(dy, w, cols, windows, groups, need_dx) -> (dx padded or None, dw)``."""

ENGINES: dict[str, tuple[Forward, Backward]] = {
    "im2col": (partial(_forward_columns, batch_last=False), partial(_backward_columns, batch_last=False)),
    "batch-last": (partial(_forward_columns, batch_last=True), partial(_backward_columns, batch_last=True)),
    "flat": (_forward_flat, _backward_flat),
    "pointwise": (_forward_pointwise, _backward_pointwise),
    "depthwise": (_forward_depthwise, _backward_depthwise),
}
"""Engine name -> (forward, backward); `choose_engine` picks the name."""
