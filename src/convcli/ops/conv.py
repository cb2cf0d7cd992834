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
  output is only ``fh * fw`` multiply-adds, and the work is memory-bound. The rule no longer
  picks it: the flat engine, one small product per channel and chunk, runs the digit networks'
  depthwise layers in half the time (64x16x28x28: 7.7 / 9.2 ms forward / backward here, 2.7 /
  4.2 ms flat); it stays for the engine rows of benchmarks/bench_ops.py.

- *im2col* (any stride): every window copied into a column (`windows.im2col`), then one batched
  matmul with ``K = C_in/G * fh * fw``. Best for few input channels on rows of 16 pixels or more
  (LeNet's first layer).
- *batch-last* (any stride): the same matmul, but the columns are laid out ``(.., oh, ow, N)``
  with the batch innermost, so each tap copies (and the backward adds back) runs of ``ow * N``
  numbers instead of ``ow``; pays off on small feature maps, rows under
  `BATCH_LAST_MAX_WIDTH` pixels (LeNet's second layer: 0.58 ms -> 0.36 ms forward, 1.23 ms ->
  0.70 ms backward at batch 64). It keeps the input turned ``(C, Hp, Wp, N)`` and makes its
  columns a few output rows at a time (one strided view, one copy), each chunk multiplied while
  in L2 and turned back to NCHW there (mnist-cnn's 64x32x14x14 with 64 3x3 filters: 11 ms
  forward as one product, 6.2 ms in chunks; the backward, which copies the columns again, takes
  about the same 11 ms).
- *flat* (any stride, at least `FLAT_MIN_CHANNELS` input channels per group on a padded plane of
  `FLAT_MIN_PIXELS` pixels or more): the padded batch is turned channels first and split into
  its ``sh * sw`` stride phases, each image's phase plane flattened to rows of length ``Wq``
  and the images laid side by side; the input that tap (i, j) sees for every output pixel of
  the batch is then one contiguous span of a phase plane. Per chunk of a few hundred columns,
  every tap's span is copied into a stack ``(C_in/G * fh * fw, chunk)`` that stays in L2, and
  one product with the weights gives the chunk of output (64x16x28x28 with 16 3x3 filters:
  8.4 ms forward, 15.2 ms backward as one im2col product; 5.5 and 10.8 ms so). The columns
  computed past the right and bottom edges (``Hq * Wq`` per image for ``oh * ow``) are thrown
  away, which is why small planes go to batch-last. Its cache is the phase planes, about the
  padded input.

Backward reuses what the forward kept: ``dw = dy @ cols.T`` (posed as OpenBLAS runs it fastest,
see `_weight_grad`) and ``dx = fold(w.T @ dy)``; the flat and batch-last engines copy their
chunks of columns again for ``dw``, and the flat engine takes ``dx`` as a flat correlation of
``dy`` with the kernel turned around, one phase at a time, so it never adds columns back.

A forward no backward follows (evaluation, `conv2d_inference`) runs the same engines, keeps
nothing, and applies the bias and a ReLU or ReLU6 in the pass that makes the output contiguous.

Timings are single-thread CPU time (OpenBLAS, AVX-512) at batch 64, with malloc's trimming off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcli.errors import InputError, ShapeError
from convcli.ops.choices import FUSED_ACTIVATIONS

# The engine rule and its thresholds live without numpy in ops/footprint.py, which the memory
# estimate of `convcli params --memory` follows too; the thresholds are re-exported here.
from convcli.ops.footprint import (  # noqa: F401
    BATCH_LAST_MAX_WIDTH,
    FLAT_MIN_CHANNELS,
    FLAT_MIN_PIXELS,
    conv_engine,
    flat_chunk,
    flat_span,
    row_chunk,
)
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

DEPTHWISE_BLOCK_BYTES = 2**18
"""Input bytes the depthwise engine runs its taps over at a time: its passes then stay in cache
(64x16x28x28 forward, 3x3 taps: 13 ms in one block of 64 images, 3.4 ms in blocks of 4-8)."""
DW_CHUNK = 1024
"""Columns per partial product when `_weight_grad` splits a long, thin ``dy @ cols.T``."""


@dataclass(frozen=True)
class ConvCache:
    """What `conv2d_backward` needs from the forward pass; treat as opaque.

    ``cols`` is what the engine kept: the padded input by phase (sh*sw, C_in, N*Hq*Wq) for the
    flat engine, the windows (G, C_in/G*fh*fw, N*oh*ow) for im2col, the padded input
    (C_in, Hp, Wp, N) for batch-last. Its size, from shapes alone, is
    `convcli.ops.footprint.conv_footprint`'s: change one, change the other (tests/nn/test_memory.py).
    """

    shape: tuple[int, int, int, int]
    g: Windows
    w: np.ndarray
    cols: np.ndarray
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
    g, xp, w4, b = _prepare(x4, w4, b, stride, padding, dilation, groups, mode, flip)
    y = _forward(xp, w4, b, g, groups, choose_engine(g, w4, groups))[0]
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
    g, xp, w4, b = _prepare(x, w, b, stride, padding, dilation, groups, mode, flip)
    engine = choose_engine(g, w4, groups)
    y, cols = _forward(xp, w4, b, g, groups, engine)
    return y, ConvCache(x.shape, g, w4, cols, groups, b is not None, flip, engine)


def conv2d_inference(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    act: str | None = None,
) -> np.ndarray:
    """`conv2d_forward`'s output without its cache, for a forward no backward follows.

    The engine's columns are freed as soon as the output is made, and the bias and ``act``
    (``"relu"`` or ``"relu6"``, or None) are applied in the one pass that makes the output
    contiguous.

    >>> x, w = np.ones((1, 1, 3, 3)), -np.ones((2, 1, 3, 3))
    >>> conv2d_inference(x, w, np.array([10.0, 8.0]), act="relu").ravel().tolist()
    [1.0, 0.0]
    """
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4:
        raise ShapeError(f"conv2d_inference: x has shape {x.shape}, expected (N, C_in, H, W)")
    if act not in (None, *FUSED_ACTIVATIONS):
        raise InputError(f"conv2d_inference: act={act!r} is not one of {', '.join(FUSED_ACTIVATIONS)}")
    g, xp, w4, b = _prepare(x, w, b, stride, padding, dilation, groups, "zeros", False)
    y = ENGINES[choose_engine(g, w4, groups)][0](xp, w4, g, groups)[0]
    out = np.empty(y.shape, dtype=y.dtype)  # N, C_out, oh, ow
    if b is None:
        np.copyto(out, y)
    else:
        np.add(y, b[:, None, None], out=out)
    if act == "relu":
        np.maximum(out, 0, out=out)
    elif act == "relu6":
        np.clip(out, 0, 6, out=out)
    return out


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
    db = dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0) if cache.bias else None  # N, C_out, P
    dxp, dw = ENGINES[cache.engine][1](dy, w, cache.cols, g, groups, need_dx)
    if cache.flip:
        dw = dw[:, :, ::-1, ::-1]
    dx = None if dxp is None else np.ascontiguousarray(crop2d(dxp, g))
    return dx, np.ascontiguousarray(dw), db


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
    """Check shapes, settle dtypes, pad; returns ``(windows, padded x, kernel as applied, bias)``."""
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
    return g, pad2d(x, g.margins, mode), (w[:, :, ::-1, ::-1] if flip else w), b


def _forward(
    xp: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Windows, groups: int, engine: str
) -> tuple[np.ndarray, np.ndarray]:
    """Output (N, C_out, oh, ow) and the column buffer, from the padded input."""
    y, cols = ENGINES[engine][0](xp, w, g, groups)
    if b is not None:
        y += b[:, None, None]
    return np.ascontiguousarray(y), cols


def choose_engine(g: Windows, w: np.ndarray, groups: int = 1) -> str:
    """The engine for windows ``g``, weights ``w`` (C_out, C_in/G, fh, fw) and ``groups``, by
    `convcli.ops.footprint.conv_engine`'s rule: pointwise for 1x1 windows, flat for one input
    and one output channel per group or for enough channels per group on a large enough plane,
    batch-last for short rows, else im2col."""
    c_out, c_group = w.shape[:2]
    return conv_engine(c_group, c_out // groups, (g.fh, g.fw), (g.sh, g.sw), g.oh, g.ow, g.padded)


def engine_fits(name: str, g: Windows, w: np.ndarray, groups: int) -> bool:
    """Whether engine ``name`` can run these windows (`convcli.ops.footprint.engine_fits`)."""
    c_out, c_group = w.shape[:2]
    return footprint_fits(name, c_group, c_out // groups, (g.fh, g.fw), (g.sh, g.sw))


class _Block(NamedTuple):
    """The taps of one input phase in the flat engine: kernel rows ``rows`` and columns ``cols``
    read phase ``phase`` (its flat index ``a * sw + b``) at row offsets ``r0, r0 + dr, ..`` and
    column offsets ``q0, q0 + dq, ..`` of the phase plane, evenly spaced."""

    phase: int
    rows: list[int]
    cols: list[int]
    r0: int
    q0: int
    dr: int
    dq: int


class _Flat(NamedTuple):
    """The flat engine's geometry: phase planes (Hq, Wq), each image's ``plane = Hq * Wq``, the
    flat output length of the last image, the farthest tap offset ``reach`` and the taps by phase."""

    hq: int
    wq: int
    plane: int
    length: int
    reach: int
    blocks: list[_Block]


def _flat_plan(g: Windows) -> _Flat:
    """Split the padded plane into its ``sh * sw`` phases (rows ``a::sh``, columns ``b::sw``):
    tap (i, j) then reads phase ``(i*dh % sh, j*dw % sw)`` at the offset
    ``(i*dh // sh) * Wq + j*dw // sw`` for the output ``y[r*Wq + c]`` (c < ow valid), a stride-1
    problem. Stride 1 is one phase holding every tap."""
    hq, wq = -(-g.padded[0] // g.sh), -(-g.padded[1] // g.sw)
    blocks = []
    for a in range(g.sh):
        rows = [i for i in range(g.fh) if i * g.dh % g.sh == a]
        for b in range(g.sw):
            cols = [j for j in range(g.fw) if j * g.dw % g.sw == b]
            if rows and cols:
                r, q = [i * g.dh // g.sh for i in rows], [j * g.dw // g.sw for j in cols]
                steps = (r[1] - r[0] if len(r) > 1 else 1, q[1] - q[0] if len(q) > 1 else 1)
                blocks.append(_Block(a * g.sw + b, rows, cols, r[0], q[0], *steps))
    reach = max((k.r0 + (len(k.rows) - 1) * k.dr) * wq + k.q0 + (len(k.cols) - 1) * k.dq for k in blocks)
    return _Flat(hq, wq, hq * wq, (g.oh - 1) * wq + g.ow, reach, blocks)


def _phase_planes(xp: np.ndarray, g: Windows, plan: _Flat) -> np.ndarray:
    """The padded batch channels first, as the flat engine reads it: (sh*sw, C, N*Hq*Wq), the
    images of each phase side by side (zeros where a phase is a row or column short)."""
    n, c = xp.shape[:2]
    if g.sh == g.sw == 1:
        planes = np.empty((1, c, n) + g.padded, dtype=xp.dtype)
        np.copyto(planes[0], xp.transpose(1, 0, 2, 3))
        return planes.reshape(1, c, n * plan.plane)
    planes = np.zeros((g.sh, g.sw, c, n, plan.hq, plan.wq), dtype=xp.dtype)  # sh, sw, C, N, Hq, Wq
    for a in range(g.sh):
        for b in range(g.sw):
            part = xp[:, :, a :: g.sh, b :: g.sw].transpose(1, 0, 2, 3)
            planes[a, b, :, :, : part.shape[2], : part.shape[3]] = part
    return planes.reshape(g.sh * g.sw, c, n * plan.plane)


def _gather(
    planes: np.ndarray, groups: int, plan: _Flat, blocks: list[_Block], start: int, cols: np.ndarray, flip: bool
) -> None:
    """Copy the columns ``start .. start + cols.shape[-1]`` of every tap of ``blocks`` into
    ``cols`` (G, K, chunk), rows ``(block, c, tap row, tap column)``: each block is one strided
    view of its phase plane, so one copy. ``flip`` reads the taps backwards from ``start``
    (the input gradient: a correlation with the kernel turned around)."""
    k0, chunk, item = 0, cols.shape[-1], planes.itemsize
    for blk in blocks:
        src = planes[blk.phase]  # C, length
        per, nr, nq = src.shape[0] // groups, len(blk.rows), len(blk.cols)
        if flip:
            at = start - (blk.r0 + (nr - 1) * blk.dr) * plan.wq - blk.q0 - (nq - 1) * blk.dq
        else:
            at = start + blk.r0 * plan.wq + blk.q0
        rows = src.strides[0]
        view = as_strided(
            src[:, at:],
            (groups, per, nr, nq, chunk),
            (rows * per, rows, blk.dr * plan.wq * item, blk.dq * item, item),
            writeable=False,
        )
        np.copyto(cols[:, k0 : k0 + per * nr * nq].reshape(groups, per, nr, nq, chunk), view)
        k0 += per * nr * nq


def _block_weights(w: np.ndarray, groups: int, plan: _Flat, flip: bool) -> list[np.ndarray]:
    """Per block, the weights as `_gather` lays out its rows: (G, C_out/G, C/G*taps) or, with
    ``flip``, the adjoint's (G, C/G, C_out/G*taps), taps turned around."""
    c_out, c_group, fh, fw = w.shape
    w5 = w.reshape(groups, c_out // groups, c_group, fh, fw)
    parts = []
    for blk in plan.blocks:
        part = w5[:, :, :, blk.rows][:, :, :, :, blk.cols]  # G, C_out/G, C/G, rows, cols
        if flip:
            part = part[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)  # G, C/G, C_out/G, rows, cols
        parts.append(part.reshape(groups, part.shape[1], -1))
    return parts


def _spans(n: int, plan: _Flat, span: int, width: int, rows: int) -> list[tuple[int, int, int, int, int]]:
    """The flat engine's chunks of output, ``span`` columns at most (`flat_span`), for ``rows``
    rows of ``width`` columns wanted per image plane: whole images, or rows of one image, never
    straddling two. Per chunk ``(image, images, first row, rows, flat columns computed)``."""
    if span >= plan.plane:
        step = span // plan.plane
        chunks = [(i, min(step, n - i), 0, rows) for i in range(0, n, step)]
    else:
        step = span // plan.wq
        chunks = [(i, 1, r0, min(step, rows - r0)) for i in range(n) for r0 in range(0, rows, step)]
    return [(i, k, r0, r, (k - 1) * plan.plane + (r - 1) * plan.wq + width) for i, k, r0, r in chunks]


def _rows_of(out: np.ndarray, k: int, r: int, plan: _Flat) -> np.ndarray:
    """A chunk's product (C, span) as the (C, k, r, Wq) rows it computed (past the columns
    computed, what it holds is never read: the callers crop to valid rows and columns)."""
    if k > 1:
        return out[:, : k * plan.plane].reshape(out.shape[0], k, plan.hq, plan.wq)[:, :, :r]
    return out[:, : r * plan.wq].reshape(out.shape[0], 1, r, plan.wq)


def _forward_flat(xp: np.ndarray, w: np.ndarray, g: Windows, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole batch as one flat plane per phase; per chunk of columns, every tap stacked along K
    (`_gather`), then one product ``(C_out, K) @ (K, chunk)``, its valid columns put in place
    in the NCHW output while in cache."""
    n, c_out = xp.shape[0], w.shape[0]
    plan = _flat_plan(g)
    planes = _phase_planes(xp, g, plan)  # phases, C, N*Hq*Wq
    wk = np.concatenate(_block_weights(w, groups, plan, False), axis=-1)  # G, C_out/G, K
    y = np.empty((n, c_out, g.oh, g.ow), dtype=xp.dtype)
    span = flat_span(groups * wk.shape[-1], xp.itemsize, n, plan.plane, plan.wq)
    cols = np.empty((groups, wk.shape[-1], span), dtype=xp.dtype)  # G, K, span
    out = np.empty((groups, c_out // groups, span), dtype=xp.dtype)  # G, C_out/G, span
    for i, k, r0, r, m in _spans(n, plan, span, g.ow, g.oh):
        _gather(planes, groups, plan, plan.blocks, i * plan.plane + r0 * plan.wq, cols[..., :m], False)
        np.matmul(wk, cols[..., :m], out=out[..., :m])
        y[i : i + k, :, r0 : r0 + r] = _rows_of(out.reshape(c_out, -1), k, r, plan)[..., : g.ow].transpose(1, 0, 2, 3)
    return y, planes


def _backward_flat(
    dy: np.ndarray, w: np.ndarray, planes: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """``dw``: per chunk, the forward's columns again, ``cols @ dy.T`` (the pose OpenBLAS runs
    fastest, see `_weight_grad`). ``dx``: per phase, a flat correlation of the gradient with the
    turned-around kernel, read from a copy of ``dy`` laid out as the output with ``reach``
    zeros in front, so no tap reads before the start."""
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    plan = _flat_plan(g)
    dyf = np.zeros((1, c_out, plan.reach + n * plan.plane), dtype=dy.dtype)  # 1, C_out, reach + N*Hq*Wq
    dyf[0, :, plan.reach :].reshape(c_out, n, plan.hq, plan.wq)[:, :, : g.oh, : g.ow] = dy.transpose(1, 0, 2, 3)
    dy3 = dyf.reshape(groups, c_out // groups, -1)[..., plan.reach :]  # G, C_out/G, N*Hq*Wq
    k = sum(len(b.rows) * len(b.cols) for b in plan.blocks) * (c // groups)
    total = (n - 1) * plan.plane + plan.length
    chunk = flat_chunk(groups * k, dy.itemsize, total)
    cols = np.empty((groups, k, chunk), dtype=dy.dtype)
    dwk = np.zeros((groups, k, c_out // groups), dtype=dy.dtype)  # G, K, C_out/G
    part = np.empty_like(dwk)
    for s0 in range(0, total, chunk):
        m = min(chunk, total - s0)
        _gather(planes, groups, plan, plan.blocks, s0, cols[..., :m], False)
        dwk += np.matmul(cols[..., :m], dy3[..., s0 : s0 + m].swapaxes(-1, -2), out=part)
    dw = np.empty((groups, c_out // groups, c // groups, g.fh, g.fw), dtype=dy.dtype)
    k0 = 0
    for blk in plan.blocks:
        size = (c // groups) * len(blk.rows) * len(blk.cols)
        part5 = dwk[:, k0 : k0 + size].reshape(groups, c // groups, len(blk.rows), len(blk.cols), -1)
        dw[:, :, :, np.array(blk.rows)[:, None], blk.cols] = part5.transpose(0, 4, 1, 2, 3)
        k0 += size
    dw = dw.reshape(w.shape)
    if not need_dx:
        return None, dw
    dxp = np.empty((n, c) + g.padded, dtype=dy.dtype)  # N, C, Hp, Wp
    tapped = {blk.phase for blk in plan.blocks}
    for phase in set(range(g.sh * g.sw)) - tapped:
        dxp[:, :, phase // g.sw :: g.sh, phase % g.sw :: g.sw] = 0
    for blk, wt in zip(plan.blocks, _block_weights(w, groups, plan, True)):
        a, b = divmod(blk.phase, g.sw)
        target = dxp[:, :, a :: g.sh, b :: g.sw]  # N, C, <= Hq, <= Wq
        hq, wq = target.shape[2:]
        span = flat_span(groups * wt.shape[-1], dy.itemsize, n, plan.plane, plan.wq)
        dcols = np.empty((groups, wt.shape[-1], span), dtype=dy.dtype)
        out = np.empty((groups, c // groups, span), dtype=dy.dtype)
        for i, k, r0, r, m in _spans(n, plan, span, plan.wq, hq):
            start = plan.reach + i * plan.plane + r0 * plan.wq
            _gather(dyf, groups, plan, [blk._replace(phase=0)], start, dcols[..., :m], True)
            np.matmul(wt, dcols[..., :m], out=out[..., :m])
            target[i : i + k, :, r0 : r0 + r] = _rows_of(out.reshape(c, -1), k, r, plan)[..., :wq].transpose(1, 0, 2, 3)
    return dxp, dw


def _forward_columns(xp: np.ndarray, w: np.ndarray, g: Windows, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """The im2col engine: one matmul over `windows.im2col`'s columns."""
    n, c_out = xp.shape[0], w.shape[0]
    order, axes = column_layout(n, g)
    cols = im2col(xp, g).reshape(groups, -1, n * g.oh * g.ow)  # G, C/G*fh*fw, columns
    y = _group_matmul(w.reshape(groups, c_out // groups, -1), cols)  # G, C_out/G, columns
    return y.reshape((c_out,) + axes).transpose(np.argsort(order)), cols


def _group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` of two (G, ., .) stacks, as one 2-D product when G is 1: numpy's stacked
    matmul runs a stack of one at about half the speed of the 2-D product (LeNet-5-sized and
    ResNet-sized columns at batch 8, OpenBLAS SkylakeX, one thread: 89 ms -> 45 ms per 1,000
    images for a 16 -> 16 channel 3x3 layer on 28x28)."""
    return a[0] @ b[0] if len(a) == len(b) == 1 else np.matmul(a, b)


def _backward_columns(
    dy: np.ndarray, w: np.ndarray, cols: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    order, axes = column_layout(n, g)
    dy2 = dy.transpose(order).reshape(groups, c_out // groups, -1)  # G, C_out/G, columns
    dw = _weight_grad(dy2, cols).reshape(w.shape)
    if not need_dx:
        return None, dw
    dcols = _group_matmul(w.reshape(groups, c_out // groups, -1).swapaxes(-1, -2), dy2)
    return col2im(dcols.reshape((c, g.fh, g.fw) + axes), g), dw


def _row_windows(xc: np.ndarray, g: Windows, groups: int, r0: int, m: int) -> np.ndarray:
    """The windows of output rows ``r0 .. r0 + m`` of a channels-first, batch-last padded input
    ``xc`` (C, Hp, Wp, N), as one strided view (G, C/G, fh, fw, m, ow, N): no copy."""
    c, n = xc.shape[0], xc.shape[-1]
    sc, sh, sw, sn = xc.strides
    return as_strided(
        xc[:, r0 * g.sh :],
        (groups, c // groups, g.fh, g.fw, m, g.ow, n),
        (sc * (c // groups), sc, g.dh * sh, g.dw * sw, g.sh * sh, g.sw * sw, sn),
        writeable=False,
    )


def _forward_batch_last(xp: np.ndarray, w: np.ndarray, g: Windows, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns ``(.., oh, ow, N)`` a few output rows at a time (`_row_windows`, about
    `FLAT_CHUNK_BYTES`), so that they stay in L2 between their copy and their product."""
    n, c, c_out = xp.shape[0], xp.shape[1], w.shape[0]
    xc = np.ascontiguousarray(xp.transpose(1, 2, 3, 0))  # C, Hp, Wp, N
    k, run = c // groups * g.fh * g.fw, g.ow * n
    rows = row_chunk(groups * k, run, g.oh, xp.itemsize)
    wk = w.reshape(groups, c_out // groups, k)
    y = np.empty((n, c_out, g.oh, g.ow), dtype=xp.dtype)
    cols = np.empty((groups, k, rows * run), dtype=xp.dtype)
    rows_out = np.empty((groups, c_out // groups, rows * run), dtype=xp.dtype)  # G, C_out/G, rows*ow*N
    for r0 in range(0, g.oh, rows):
        m = min(rows, g.oh - r0)
        part, out = cols[..., : m * run], rows_out[..., : m * run]
        np.copyto(part.reshape(groups, c // groups, g.fh, g.fw, m, g.ow, n), _row_windows(xc, g, groups, r0, m))
        np.matmul(wk, part, out=out)
        # to NCHW while in cache, through a 2-D transpose: turning the whole (C_out, oh, ow, N)
        # output at once takes 4.6 ms at 64x64x14x14, these 0.7 ms
        rows_t = np.ascontiguousarray(out.reshape(c_out, m * run).T)  # rows*ow*N, C_out
        y[:, :, r0 : r0 + m] = rows_t.reshape(m, g.ow, n, c_out).transpose(2, 3, 0, 1)
    return y, xc


def _backward_batch_last(
    dy: np.ndarray, w: np.ndarray, xc: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """Per chunk of output rows: the forward's columns again for ``dw`` (``cols @ dy.T``), and
    ``w.T @ dy`` added back tap by tap into the batch-last input gradient."""
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    k, run = c // groups * g.fh * g.fw, g.ow * n
    rows = row_chunk(groups * k, run, g.oh, dy.itemsize)
    dyt = np.ascontiguousarray(dy.transpose(1, 2, 3, 0)).reshape(groups, c_out // groups, -1)  # G, C_out/G, oh*ow*N
    cols = np.empty((groups, k, rows * run), dtype=dy.dtype)
    dwk = np.zeros((groups, k, c_out // groups), dtype=dy.dtype)  # G, K, C_out/G
    part = np.empty_like(dwk)
    dxc = np.zeros_like(xc) if need_dx else None  # C, Hp, Wp, N
    wt = w.reshape(groups, c_out // groups, k).swapaxes(-1, -2)  # G, K, C_out/G
    for r0 in range(0, g.oh, rows):
        m = min(rows, g.oh - r0)
        chunk, d = cols[..., : m * run], dyt[..., r0 * run : (r0 + m) * run]
        np.copyto(chunk.reshape(groups, c // groups, g.fh, g.fw, m, g.ow, n), _row_windows(xc, g, groups, r0, m))
        dwk += np.matmul(chunk, d.swapaxes(-1, -2), out=part)
        if dxc is not None:
            dcols = np.matmul(wt, d, out=chunk).reshape(c, g.fh, g.fw, m, g.ow, n)
            for i, j, (_, at) in g.taps():
                top = r0 * g.sh + i * g.dh
                dxc[:, top : top + (m - 1) * g.sh + 1 : g.sh, at] += dcols[:, i, j]
    dw = dwk.swapaxes(-1, -2).reshape(w.shape)
    return (None if dxc is None else dxc.transpose(3, 0, 1, 2)), dw


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
        return _group_matmul(cols, dy2.swapaxes(-1, -2)).reshape(g, k, m).swapaxes(-1, -2)
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
    "im2col": (_forward_columns, _backward_columns),
    "batch-last": (_forward_batch_last, _backward_batch_last),
    "flat": (_forward_flat, _backward_flat),
    "pointwise": (_forward_pointwise, _backward_pointwise),
    "depthwise": (_forward_depthwise, _backward_depthwise),
}
"""Engine name -> (forward, backward); `choose_engine` picks the name."""
