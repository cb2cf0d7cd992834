"""Window geometry, border padding and the tap slices shared by convolution and pooling.

Every op here works on the last two axes of an NCHW array. A *tap* is one position ``(i, j)``
inside the (dilated) window; the tap's slice of the padded input holds, for every output pixel,
the input value that tap sees. Looping over the ``fh * fw`` taps and doing whole-array work per
tap is how conv and pool stay vectorised without materialising every window.

Border modes use PyTorch's names. The same modes under other libraries' names:

=============  ==================  ===================  ======================
convcli/torch  numpy.pad           scipy.ndimage        OpenCV
=============  ==================  ===================  ======================
zeros          constant            constant (cval=0)    BORDER_CONSTANT
reflect        reflect             mirror               BORDER_REFLECT_101
replicate      edge                nearest              BORDER_REPLICATE
circular/wrap  wrap                wrap (grid-wrap)     BORDER_WRAP
symmetric      symmetric           reflect              BORDER_REFLECT
=============  ==================  ===================  ======================

Beware the collision: scipy's ``reflect`` is our ``symmetric`` (the edge pixel repeats), and
our ``reflect`` (no repeat, OpenCV's default) is scipy's ``mirror``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from convcli.errors import InputError, ShapeError, did_you_mean
from convcli.ops.choices import BORDER_MODES, NumpyPadMode
from convcli.shapes import AxisPadding, conv_axis, pool_axis

IntPair: TypeAlias = int | tuple[int, int]
"""A window size, stride or dilation: one int for both axes, or ``(h, w)``."""
Padding2d: TypeAlias = AxisPadding | tuple[tuple[int, int], tuple[int, int]]
"""Padding of a plane: one axis' padding (an int, a mode, ``(lo, hi)``) for both axes, or
``((top, bottom), (left, right))``."""

FOREIGN_MODES = {
    "constant": "zeros",
    "mirror": "reflect",
    "reflect_101": "reflect",
    "nearest": "replicate",
    "edge": "replicate",
    "grid-wrap": "circular",
}
"""Other libraries' names that are not ours, for the error message (scipy's ``reflect`` is ours too,
meaning something else, so no name is silently translated)."""


def numpy_pad_mode(mode: str, what: str = "mode") -> NumpyPadMode:
    """The ``numpy.pad`` mode for a convcli border mode, or an InputError naming the closest.

    >>> numpy_pad_mode("replicate")
    'edge'
    """
    if mode in BORDER_MODES:
        return BORDER_MODES[mode]
    foreign = FOREIGN_MODES.get(str(mode))
    hint = f" (did you mean {foreign!r}?)" if foreign else did_you_mean(str(mode), BORDER_MODES)
    raise InputError(f"{what}={mode!r} is not a border mode{hint}; one of {', '.join(BORDER_MODES)}")


def as_float(x: object, what: str = "x") -> np.ndarray:
    """``x`` as a float array: float64 stays float64, every other real dtype becomes float32."""
    a = np.asarray(x)
    if a.dtype == np.float64 or a.dtype == np.float32:
        return a
    if a.dtype.kind not in "biuf":
        raise InputError(f"{what}: dtype {a.dtype} is not a real number type")
    return a.astype(np.float32)


def int_pair(value: IntPair, what: str) -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints, as a pair; positive values only.

    >>> int_pair(2, "stride")
    (2, 2)
    """
    try:
        a = _as_objects(value)
        h, w = (a.item(), a.item()) if a.ndim == 0 else a
        pair = operator.index(h), operator.index(w)
    except (TypeError, ValueError):
        raise ShapeError(f"{what}={value!r} is not an int or a pair of ints") from None
    if min(pair) < 1:
        raise ShapeError(f"{what}={value!r} must be positive")
    return pair


def split_padding(padding: Padding2d, what: str = "padding") -> tuple[AxisPadding, AxisPadding]:
    """Padding for the H axis and the W axis, each in the form `shapes.resolve_padding` takes.

    ``padding`` is an int, a mode (``valid``, ``same``, ``full``, ``tf``), a ``(lo, hi)`` pair
    applied to both axes, or ``((top, bottom), (left, right))``.

    >>> split_padding(1)
    (1, 1)
    >>> split_padding((0, 1))
    ((0, 1), (0, 1))
    >>> split_padding(((1, 2), (3, 4)))
    ((1, 2), (3, 4))
    """
    if isinstance(padding, str):
        return padding, padding
    try:
        a = _as_objects(padding)
        if a.ndim == 0:
            p = operator.index(a.item())
            return p, p
        if a.shape == (2,):
            pair = operator.index(a[0]), operator.index(a[1])
            return pair, pair
        if a.shape == (2, 2):
            (top, bottom), (left, right) = a
            return ((operator.index(top), operator.index(bottom)), (operator.index(left), operator.index(right)))
    except (TypeError, ValueError):
        pass
    raise ShapeError(f"{what}={padding!r} is not an int, a mode, a (lo, hi) pair or ((top, bottom), (left, right))")


def _as_objects(value: object) -> np.ndarray:
    """``value`` as an array of the objects it holds, to check its shape and then each item.

    Callers outside the type checker pass lists, numpy ints and arrays too. The object dtype
    leaves each item as given rather than casting them all to one numpy dtype, so
    `operator.index` judges the items themselves; a ragged value becomes an array of its parts,
    which that check refuses.
    """
    return np.asarray(value, dtype=object)


@dataclass(frozen=True)
class Windows:
    """Where the windows of a conv or pool sit on one (H, W) plane.

    ``pads`` is the padding asked for, ``(top, bottom, left, right)``; ``overhang`` the further
    rows and columns past the bottom and right padding that a ceil-mode pooling window reaches;
    ``dropped`` the trailing rows and columns (padding included) that no window covers.
    """

    h: int
    w: int
    fh: int
    fw: int
    sh: int
    sw: int
    dh: int
    dw: int
    oh: int
    ow: int
    pads: tuple[int, int, int, int]
    overhang: tuple[int, int] = (0, 0)
    dropped: tuple[int, int] = (0, 0)

    @property
    def margins(self) -> tuple[int, int, int, int]:
        """Padding that holds every window: ``pads`` plus the overhang."""
        top, bottom, left, right = self.pads
        return top, bottom + self.overhang[0], left, right + self.overhang[1]

    @property
    def padded(self) -> tuple[int, int]:
        """Height and width of the plane padded by `margins`."""
        top, bottom, left, right = self.margins
        return self.h + top + bottom, self.w + left + right

    def taps(self) -> Iterator[tuple[int, int, tuple[slice, slice]]]:
        """``(i, j, (rows, cols))`` for every tap; ``xp[..., rows, cols]`` is (oh, ow)."""
        for i in range(self.fh):
            rows = slice(i * self.dh, i * self.dh + (self.oh - 1) * self.sh + 1, self.sh)
            for j in range(self.fw):
                cols = slice(j * self.dw, j * self.dw + (self.ow - 1) * self.sw + 1, self.sw)
                yield i, j, (rows, cols)

    @property
    def overlapping(self) -> bool:
        """Whether two windows can share an input pixel (stride smaller than the dilated window)."""
        return self.sh < (self.fh - 1) * self.dh + 1 or self.sw < (self.fw - 1) * self.dw + 1


def conv_windows(
    h: int,
    w: int,
    fh: int,
    fw: int,
    stride: IntPair = 1,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    what: str = "conv2d",
) -> Windows:
    """Window geometry of a convolution; sizes from `shapes.conv_axis`.

    >>> conv_windows(6, 6, 3, 3).oh
    4
    """
    (sh, sw), (dh, dw) = int_pair(stride, f"{what}: stride"), int_pair(dilation, f"{what}: dilation")
    ph, pw = split_padding(padding, f"{what}: padding")
    ah = conv_axis(h, fh, sh, ph, dh, what=f"{what} (height)")
    aw = conv_axis(w, fw, sw, pw, dw, what=f"{what} (width)")
    pads = (ah.p_lo, ah.p_hi, aw.p_lo, aw.p_hi)
    return Windows(h, w, fh, fw, sh, sw, dh, dw, ah.out, aw.out, pads, dropped=(ah.dropped, aw.dropped))


def pool_windows(
    h: int,
    w: int,
    size: IntPair,
    stride: IntPair | None = None,
    padding: Padding2d = 0,
    dilation: IntPair = 1,
    ceil: bool = False,
    what: str = "pool2d",
) -> Windows:
    """Window geometry of a pooling; sizes from `shapes.pool_axis`, stride defaulting to size.

    >>> pool_windows(5, 5, 2, ceil=True).margins
    (0, 1, 0, 1)
    """
    fh, fw = int_pair(size, f"{what}: size")
    sh, sw = (fh, fw) if stride is None else int_pair(stride, f"{what}: stride")
    dh, dw = int_pair(dilation, f"{what}: dilation")
    ph, pw = split_padding(padding, f"{what}: padding")
    axes = []
    for n, f, s, d, p, name in ((h, fh, sh, dh, ph, "height"), (w, fw, sw, dw, pw, "width")):
        a = pool_axis(n, f, s, p, d, ceil, what=f"{what} ({name})")
        overhang = max((a.out - 1) * s + (f - 1) * d + 1 - (n + a.p_lo + a.p_hi), 0)
        axes.append((a.out, a.p_lo, a.p_hi, overhang, a.dropped))
    (oh, top, bottom, below, lost_h), (ow, left, right, beyond, lost_w) = axes
    return Windows(h, w, fh, fw, sh, sw, dh, dw, oh, ow, (top, bottom, left, right), (below, beyond), (lost_h, lost_w))


def pad2d(x: np.ndarray, pads: tuple[int, int, int, int], mode: str = "zeros", value: float = 0.0) -> np.ndarray:
    """Pad the last two axes by ``(top, bottom, left, right)``; returns ``x`` itself if no padding.

    ``mode="zeros"`` fills with ``value`` (``-inf`` for max pooling).

    >>> pad2d(np.arange(3.0)[None], (0, 0, 1, 2), "reflect")
    array([[1., 0., 1., 2., 1., 0.]])
    """
    top, bottom, left, right = pads
    if top == bottom == left == right == 0:
        return x
    if mode != "zeros":
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)], mode=numpy_pad_mode(mode))
    h, w = x.shape[-2:]
    # one fill and one copy: faster than np.pad's per-side bookkeeping
    xp = np.full(x.shape[:-2] + (h + top + bottom, w + left + right), value, dtype=x.dtype)
    xp[..., top : top + h, left : left + w] = x
    return xp


def strip_padder(
    x: np.ndarray, pads: tuple[int, int, int, int], mode: str
) -> Callable[[int, int, np.ndarray], np.ndarray]:
    """``fill(first, end, out)``: rows ``first`` to ``end`` of ``pad2d(x, pads, mode)``, written
    into the start of ``out`` (``(..., rows, padded width)``) and returned. A strip that stays in
    cache, instead of a padded copy of the whole image.

    Each padded row is the row of ``x`` that ``np.pad`` would copy there, found once by padding
    the row numbers themselves; the side columns likewise; ``zeros`` (row number -1) leaves zeros.

    >>> x = np.arange(12.0).reshape(3, 4)
    >>> fill = strip_padder(x, (2, 1, 1, 2), "reflect")
    >>> bool((fill(0, 3, np.empty((3, 7))) == pad2d(x, (2, 1, 1, 2), "reflect")[0:3]).all())
    True
    """
    top, bottom, left, right = pads
    h, w = x.shape[-2:]
    zeros = mode == "zeros"
    numpy_mode = numpy_pad_mode(mode)

    def numbers(n: int, before: int, after: int) -> np.ndarray:
        if zeros:
            return np.pad(np.arange(n), (before, after), constant_values=-1)
        return np.pad(np.arange(n), (before, after), mode=numpy_mode)

    row_of, col_of = numbers(h, top, bottom), numbers(w, left, right)
    left_cols, right_cols = col_of[:left], col_of[left + w :]

    def fill(first: int, end: int, out: np.ndarray) -> np.ndarray:
        strip = out[..., : end - first, :]
        if top <= first and end <= top + h:  # inside the image: a view of its rows
            src, dst = x[..., first - top : end - top, :], strip
        else:  # across the top or bottom: gather the rows (zeros mode: the rows inside)
            rows = row_of[first:end]
            inside = np.flatnonzero(rows >= 0)
            if len(inside) < len(rows):
                strip.fill(0)
                if not len(inside):
                    return strip
            src, dst = x[..., rows[inside], :], strip[..., inside[0] : inside[-1] + 1, :]
        dst[..., left : left + w] = src
        if zeros:
            dst[..., :left] = 0
            dst[..., left + w :] = 0
        else:
            dst[..., :left] = src[..., left_cols]
            dst[..., left + w :] = src[..., right_cols]
        return strip

    return fill


def crop2d(xp: np.ndarray, g: Windows) -> np.ndarray:
    """The unpadded (h, w) part of a padded plane, as a contiguous array (the adjoint of pad2d)."""
    top, _, left, _ = g.pads
    if g.padded == (g.h, g.w):
        return xp
    return np.ascontiguousarray(xp[..., top : top + g.h, left : left + g.w])


def column_layout(n: int, g: Windows, batch_last: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How `im2col` lays out a batch of ``n``: the transpose of NCHW its columns follow, and the
    column axes after (C, fh, fw): (N, oh, ow), or (oh, ow, N) with the batch last."""
    return ((1, 2, 3, 0), (g.oh, g.ow, n)) if batch_last else ((1, 0, 2, 3), (n, g.oh, g.ow))


def im2col(xp: np.ndarray, g: Windows, batch_last: bool = False) -> np.ndarray:
    """Every window of a padded NCHW batch as columns, channels first: (C, fh, fw, N, oh, ow),
    or (C, fh, fw, oh, ow, N) with ``batch_last``.

    The batch sits beside the pixels so that one matmul covers the whole batch; the input is
    turned channels-first once, so each tap copies whole blocks: runs of ``ow`` numbers, or of
    ``ow * N`` with the batch last.
    """
    order, axes = column_layout(len(xp), g, batch_last)
    xc = np.ascontiguousarray(xp.transpose(order))  # C, N, Hp, Wp or C, Hp, Wp, N
    col = np.empty((xc.shape[0], g.fh, g.fw) + axes, dtype=xp.dtype)
    lead = (slice(None),) * order.index(2)  # the axes before the rows
    for i, j, at in g.taps():
        col[:, i, j] = xc[lead + at]
    return col


def col2im(dcol: np.ndarray, g: Windows, batch_last: bool = False) -> np.ndarray:
    """Adjoint of `im2col`: add every column back where it came from; returns the padded
    (N, C, Hp, Wp), as a view."""
    n = dcol.shape[-1 if batch_last else 3]
    order, _ = column_layout(n, g, batch_last)
    padded = (n, dcol.shape[0]) + g.padded  # N, C, Hp, Wp
    dxc = np.zeros(tuple(padded[k] for k in order), dtype=dcol.dtype)
    lead = (slice(None),) * order.index(2)
    for i, j, at in g.taps():
        dxc[lead + at] += dcol[:, i, j]
    return dxc.transpose(np.argsort(order))
