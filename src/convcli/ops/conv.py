"""2-D convolution of NCHW batches, forward and backward, as matrix products.

``conv2d`` computes the cross-correlation CNNs call convolution (PyTorch's ``conv2d``)::

    y[n, o, r, c] = b[o] + sum_{k, i, j} w[o, k, i, j] * xp[n, g*C_in/G + k, r*s + i*d, c*s + j*d]

where ``xp`` is the padded input, ``g = o // (C_out/G)`` the group of output channel ``o`` and
``G = groups``. ``flip=True`` flips the kernel first: true convolution, as ``scipy.signal.convolve2d``.

The matrix products are the engines of `convcli.ops.conv_engines`; `choose_engine` picks one
by the rule in `convcli.ops.footprint`. Forward and backward run the engine on contiguous slices
of the batch at once, one per core (`convcli.threads`; small layers stay whole): each slice
writes its part of the output and of ``dx``, and ``dw`` is the sum of the slices' partial
gradients.

A forward no backward follows (evaluation, `conv2d_inference`) runs the same engines, keeps
nothing, and applies the bias and a ReLU or ReLU6 in the pass that makes the output contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.errors import InputError, ShapeError
from convcli.ops.choices import FUSED_ACTIVATIONS
from convcli.ops.conv_engines import ENGINES

# The engine rule and its thresholds live without numpy in ops/footprint.py, which the memory
# estimate of `convcli params --memory` follows too.
from convcli.ops.footprint import conv_engine, conv_work
from convcli.ops.footprint import engine_fits as footprint_fits
from convcli.ops.windows import (
    IntPair,
    Padding2d,
    Windows,
    as_float,
    conv_windows,
    crop2d,
    pad2d,
)
from convcli.threads import map_parts, map_slices, slices_for


@dataclass(frozen=True)
class ConvCache:
    """What `conv2d_backward` needs from the forward pass; treat as opaque.

    ``cols`` is what the engine kept for each slice of the batch (`convcli.threads`), in the
    order of ``slices``: the padded input by phase (sh*sw, C_in, N*Hq*Wq) for the flat engine,
    the windows (G, C_in/G*fh*fw, N*oh*ow) for im2col, the padded input (C_in, Hp, Wp, N) for
    batch-last, N the slice's images. Their size, from shapes alone, is
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

    The engine's columns are freed as soon as the output is made; the bias is added as the slices
    are put in place, and ``act`` (``"relu"`` or ``"relu6"``, or None) applied in place after.

    >>> x, w = np.ones((1, 1, 3, 3)), -np.ones((2, 1, 3, 3))
    >>> conv2d_inference(x, w, np.array([10.0, 8.0]), act="relu").ravel().tolist()
    [1.0, 0.0]
    """
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4:
        raise ShapeError(f"conv2d_inference: x has shape {x.shape}, expected (N, C_in, H, W)")
    if act not in (None, *FUSED_ACTIVATIONS):
        raise InputError(f"conv2d_inference: act={act!r} is not one of {', '.join(FUSED_ACTIVATIONS)}")
    g, x, w4, b = _prepare(x, w, b, stride, padding, dilation, groups, "zeros", False)
    y = _forward(x, w4, b, g, groups, choose_engine(g, w4, groups), "zeros")[0]  # N, C_out, oh, ow
    if act is not None:
        map_slices(lambda s: _activate(y[s], act), len(y), y.size)
    return y


def _activate(y: np.ndarray, act: str) -> None:
    """ReLU or ReLU6 in place."""
    if act == "relu":
        np.maximum(y, 0, out=y)
    else:
        np.clip(y, 0, 6, out=y)


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
    `convcli.ops.footprint.conv_engine`'s rule: pointwise for 1x1 windows, flat for one input
    and one output channel per group or for enough channels per group on a large enough plane,
    batch-last for short rows, else im2col."""
    c_out, c_group = w.shape[:2]
    return conv_engine(c_group, c_out // groups, (g.fh, g.fw), (g.sh, g.sw), g.oh, g.ow, g.padded)


def engine_fits(name: str, g: Windows, w: np.ndarray, groups: int) -> bool:
    """Whether engine ``name`` can run these windows (`convcli.ops.footprint.engine_fits`)."""
    c_out, c_group = w.shape[:2]
    return footprint_fits(name, c_group, c_out // groups, (g.fh, g.fw), (g.sh, g.sw))
