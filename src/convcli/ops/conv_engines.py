"""The engines of `convcli.ops.conv`: a convolution of a padded NCHW batch as matrix products,
each forward beside its backward.

Four engines share the work; `convcli.ops.conv.choose_engine` picks one by the rule of
`convcli.ops.footprint.conv_engine`, whose thresholds were measured with
benchmarks/bench_ops.py (its engine rows time every engine on the same layers) and, for the two
that serve the small layers of the digit networks, benchmarks/bench_train.py:

- *pointwise* (1x1 windows, any stride): the input planes, strided if need be, are already the
  columns; one matmul per image ``(C_out, C_in) @ (C_in, oh*ow)`` gives NCHW directly, and the
  weight gradient is a batch of per-image products, summed (a single product over ``N*oh*ow``
  columns is much slower in OpenBLAS).
- *im2col* (any stride): every window copied into a column (`windows.im2col`), then one
  matmul per image with ``K = C_in/G * fh * fw``. Best for few input channels on rows of 16 pixels or more
  (LeNet's first layer).
- *batch-last* (any stride): the same matmul, but the columns are laid out ``(.., oh, ow, N)``
  with the batch innermost, so each tap copies (and the backward adds back) runs of ``ow * N``
  numbers instead of ``ow``; pays off on small feature maps, rows under
  `BATCH_LAST_MAX_WIDTH` pixels (LeNet's second layer: 0.58 ms -> 0.36 ms forward, 1.23 ms ->
  0.70 ms backward at batch 64). It keeps the input turned ``(C, Hp, Wp, N)`` and makes its
  columns a few output rows at a time (one strided view, one copy), each chunk multiplied while
  in L2 and turned back to NCHW there (mnist-cnn's 64x32x14x14 with 64 3x3 filters: 11 ms
  forward as one product, 6.2 ms in chunks, 5.7 ms with one group's product posed to give
  the chunk turned; the backward, which copies the columns again, takes
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

Backward reuses what the forward kept: ``dw = dy @ cols.T``, posed as ``(cols @ dy.T).T``, which
OpenBLAS's AVX-512 kernel runs up to 2.5x faster (LeNet-5's C3 at batch 64: 0.40 -> 0.16 ms), and
``dx = fold(w.T @ dy)``; the flat and batch-last engines copy their chunks of columns again for
``dw``, and the flat engine takes ``dx`` as a flat correlation of ``dy`` with the kernel turned
around, one phase at a time, so it never adds columns back.

Timings are single-thread CPU time (OpenBLAS, AVX-512) at batch 64, with malloc's trimming off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcli.ops.footprint import BATCH_LAST_BACKWARD_BYTES, FLAT_CHUNK_BYTES, flat_chunk, flat_span, row_chunk
from convcli.ops.windows import Windows, col2im, column_layout, im2col


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
    fastest). ``dx``: per phase, a flat correlation of the gradient with the
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
    """The im2col engine: one product per image over `windows.im2col`'s columns, which gives
    NCHW directly (one product over the batch's columns, then turned to NCHW: 1.25 ms for
    mnist-cnn's first layer, 64x1x28x28 to 32 channels; 0.36 ms so)."""
    n, c_out, p = xp.shape[0], w.shape[0], g.oh * g.ow
    cols = im2col(xp, g).reshape(groups, -1, n, p)  # G, C/G*fh*fw, N, oh*ow
    y = np.matmul(w.reshape(groups, c_out // groups, -1), cols.transpose(2, 0, 1, 3))  # N, G, C_out/G, oh*ow
    return y.reshape(n, c_out, g.oh, g.ow), cols.reshape(groups, -1, n * p)


def _group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` of two (G, ., .) stacks, as one 2-D product when G is 1: numpy's stacked
    matmul runs a stack of one at about half the speed of the 2-D product (LeNet-5-sized and
    ResNet-sized columns at batch 8, OpenBLAS SkylakeX, one thread: 89 ms -> 45 ms per 1,000
    images for a 16 -> 16 channel 3x3 layer on 28x28)."""
    return a[0] @ b[0] if len(a) == len(b) == 1 else np.matmul(a, b)


def _backward_columns(
    dy: np.ndarray, w: np.ndarray, cols: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """``dw``: per image, ``cols @ dy.T`` (the pose OpenBLAS's AVX-512 kernel runs fastest on
    these long, thin products), summed: 0.82 -> 0.42 ms against one product over the batch's
    columns for mnist-cnn's first layer. ``dx``: ``w.T @ dy`` folded back (`windows.col2im`)."""
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    k, p = cols.shape[1], g.oh * g.ow
    per_image = cols.reshape(groups, k, n, p).transpose(2, 0, 1, 3)  # N, G, K, oh*ow
    dy4 = dy.reshape(n, groups, c_out // groups, p)  # N, G, C_out/G, oh*ow
    dw = np.matmul(per_image, dy4.swapaxes(-1, -2)).sum(axis=0).swapaxes(-1, -2).reshape(w.shape)
    if not need_dx:
        return None, dw
    order, axes = column_layout(n, g)
    dy2 = dy.transpose(order).reshape(groups, c_out // groups, -1)  # G, C_out/G, columns
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
        # to NCHW while in cache, through a 2-D transpose: turning the whole (C_out, oh, ow, N)
        # output at once takes 4.6 ms at 64x64x14x14, these 0.7 ms; with one group the product
        # posed as ``part.T @ w.T`` gives the transposed rows directly
        if groups == 1:
            rows_t = np.matmul(part[0].T, wk[0].T, out=rows_out.reshape(-1)[: m * run * c_out].reshape(m * run, c_out))
        else:
            np.matmul(wk, part, out=out)
            rows_t = np.ascontiguousarray(out.reshape(c_out, m * run).T)  # rows*ow*N, C_out
        y[:, :, r0 : r0 + m] = rows_t.reshape(m, g.ow, n, c_out).transpose(2, 3, 0, 1)
    return y, xc


def _backward_batch_last(
    dy: np.ndarray, w: np.ndarray, xc: np.ndarray, g: Windows, groups: int, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """Per chunk of output rows (`BATCH_LAST_BACKWARD_BYTES` with ``dx``): the forward's columns again for
    ``dw`` (``cols @ dy.T``), and ``w.T @ dy`` added back tap by tap into the batch-last input
    gradient, turned to NCHW one channel at a time at the end (as 2-D transposes of
    ``(Hp*Wp, N)`` that stay in cache: 0.73 -> 0.38 ms for mnist-cnn's 64x32x16x16 gradient)."""
    n, c_out, c = dy.shape[0], w.shape[0], w.shape[1] * groups
    k, run = c // groups * g.fh * g.fw, g.ow * n
    budget = BATCH_LAST_BACKWARD_BYTES if need_dx else FLAT_CHUNK_BYTES  # no adds back without dx
    rows = row_chunk(groups * k, run, g.oh, dy.itemsize, budget)
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
    if dxc is None:
        return None, dw
    hp, wp = g.padded
    dxp = np.empty((n, c, hp, wp), dtype=dy.dtype)  # N, C, Hp, Wp
    for ch in range(c):
        dxp[:, ch] = dxc[ch].reshape(hp * wp, n).T.reshape(n, hp, wp)
    return dxp, dw


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


Forward = Callable[[np.ndarray, np.ndarray, Windows, int], tuple[np.ndarray, np.ndarray]]
"""``(padded x, w, windows, groups) -> (y, cols)``."""
Backward = Callable[[np.ndarray, np.ndarray, np.ndarray, Windows, int, bool], tuple[np.ndarray | None, np.ndarray]]
"""``(dy, w, cols, windows, groups, need_dx) -> (dx padded or None, dw)``."""

ENGINES: dict[str, tuple[Forward, Backward]] = {
    "im2col": (_forward_columns, _backward_columns),
    "batch-last": (_forward_batch_last, _backward_batch_last),
    "flat": (_forward_flat, _backward_flat),
    "pointwise": (_forward_pointwise, _backward_pointwise),
}
"""Engine name -> (forward, backward); `choose_engine` picks the name."""
