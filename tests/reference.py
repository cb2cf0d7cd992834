"""Slow, obviously correct conv2d and pool2d: nested loops over every output pixel and tap.

Written for clarity, not speed, and on purpose independent of convcli: padding is an index
mapping, not np.pad, and output sizes come from PyTorch's documented formulas. Use on tiny
inputs only.
"""

from __future__ import annotations

import math

import numpy as np


def source_index(q: int, n: int, mode: str) -> int | None:
    """Which input index the padded position ``q`` reads (None: a zero / -inf pad)."""
    if 0 <= q < n:
        return q
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(q, 0), n - 1)
    if mode in ("circular", "wrap"):
        return q % n
    while not 0 <= q < n:
        if mode == "reflect":  # edge pixel not repeated: ... 2 1 | 0 1 2 | 1 0 ...
            q = -q if q < 0 else 2 * (n - 1) - q
        elif mode == "symmetric":  # edge pixel repeated:     ... 1 0 | 0 1 2 | 2 1 ...
            q = -q - 1 if q < 0 else 2 * n - 1 - q
        else:
            raise ValueError(mode)
    return q


def conv2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, mode="zeros", flip=False):
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, fh, fw); pads (top, bottom, left, right)."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if flip:
        w = w[:, :, ::-1, ::-1]
    n_batch, c_in, h, wd = x.shape
    c_out, c_group, fh, fw = w.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, pads
    oh = (h + top + bottom - dh * (fh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (fw - 1) - 1) // sw + 1
    y = np.zeros((n_batch, c_out, oh, ow))
    per_group_out = c_out // groups
    for n in range(n_batch):
        for o in range(c_out):
            group = o // per_group_out
            for r in range(oh):
                for c in range(ow):
                    total = 0.0 if b is None else float(b[o])
                    for k in range(c_group):
                        channel = group * c_group + k
                        for i in range(fh):
                            for j in range(fw):
                                qi = source_index(r * sh + i * dh - top, h, mode)
                                qj = source_index(c * sw + j * dw - left, wd, mode)
                                if qi is not None and qj is not None:
                                    total += w[o, k, i, j] * x[n, channel, qi, qj]
                    y[n, o, r, c] = total
    return y


def pool_out(n: int, f: int, s: int, p_lo: int, p_hi: int, d: int, ceil: bool) -> int:
    """PyTorch's pooling output size, including its ceil-mode rule."""
    span = n + p_lo + p_hi - d * (f - 1) - 1
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p_lo:
        out -= 1
    return out


def pool2d(x, size, stride=None, pads=(0, 0, 0, 0), dilation=(1, 1), ceil=False, mode="max", count_include_pad=True):
    """Max or average pooling of x (N, C, H, W); pads (top, bottom, left, right)."""
    x = np.asarray(x, dtype=np.float64)
    n_batch, channels, h, wd = x.shape
    (fh, fw) = size
    (sh, sw) = stride or size
    (dh, dw), (top, bottom, left, right) = dilation, pads
    oh, ow = pool_out(h, fh, sh, top, bottom, dh, ceil), pool_out(wd, fw, sw, left, right, dw, ceil)
    y = np.zeros((n_batch, channels, oh, ow))
    for n in range(n_batch):
        for ch in range(channels):
            for r in range(oh):
                for c in range(ow):
                    values, in_padded = [], 0
                    for i in range(fh):
                        for j in range(fw):
                            qi, qj = r * sh + i * dh - top, c * sw + j * dw - left
                            if -top <= qi < h + bottom and -left <= qj < wd + right:
                                in_padded += 1
                            if 0 <= qi < h and 0 <= qj < wd:
                                values.append(x[n, ch, qi, qj])
                    if mode == "max":
                        y[n, ch, r, c] = max(values, default=-np.inf)
                    else:
                        y[n, ch, r, c] = sum(values) / (in_padded if count_include_pad else len(values))
    return y
