"""What convolution and pooling keep for their backward, in bytes, from shapes alone.

Each function here mirrors one forward in `convcli.ops.conv` or `convcli.ops.pool` and names
the arrays that forward puts in its cache; `convcli.nn.memory` adds them up for a network. No
numpy here: ``convcli params --memory`` answers for a 224x224 ResNet-50 without loading it.
The engine rule lives here for the same reason, and `convcli.ops.conv.choose_engine` calls it,
so that the estimate and the forward can never pick different engines.

``b`` is the bytes per number (4 for float32). tests/nn/test_memory.py runs every digit network
and checks these numbers against the ``nbytes`` of what the caches really hold.
"""

from __future__ import annotations

from typing import NamedTuple

FLAT_MIN_CHANNELS = 16
"""Input channels per group from which the flat engine's stacked taps beat one im2col matmul."""
FLAT_MIN_PIXELS = 784
"""Pixels of the padded input plane (``Hp * Wp``) from which the flat engine pays off: below, the
columns it computes past the edges (``Hq * Wq`` per image for ``oh * ow``) cost more than the
copies it saves (benchmarks/bench_ops.py, engine rows: 14x14 and 7x7 maps go to batch-last)."""
FLAT_CHUNK_BYTES = 2**20
"""Bytes of the flat and batch-last engines' stacked columns per product: they stay in L2 (2 MB
here) between their copy and the matmul (64x16x28x28, 16 3x3 filters: 8.4 ms forward in one
im2col product, 5.5 ms in chunks; 2**19 and 2**21 bytes are 5-10% slower on the digit layers)."""
POOL_CHUNK_BYTES = 2**20
"""Bytes of input a pooling forward reads per pass over its taps: its ~15 passes (max, then the
search for the first maximum) then find them in L2 (64x32x28x28 max 2x2: 2.6 ms in one pass
over the batch, 1.9 ms in chunks of 8 images)."""
BATCH_LAST_BACKWARD_BYTES = 2**22
"""Bytes of the batch-last backward's chunk of columns: its adds back into the input gradient,
one per tap and chunk, cost more in calls than in cache misses on the digit layers (LeNet-5's
C3 at batch 64: 1.91 ms backward in chunks of 1 MB, 1.57 ms in 4 MB; mnist-cnn's second layer
12.0 -> 11.6 ms)."""
FLAT_BACKWARD_COPIES = 4
"""A stride-1 max pooling backward's work arrays per chunk, in copies of the chunk's padded input
gradient: its chunks hold `POOL_CHUNK_BYTES` of them in all (64x16x14x14: 1.2 ms in chunks of
16 images, 2.8 ms in one chunk)."""
FLAT_BACKWARD_MIN_PIXELS = 196
"""Pixels of the padded plane from which a stride-1 max pooling's backward goes flat: on smaller
planes the outputs it computes past each plane's corner cost more than ``np.bincount`` (3x3,
padding 1, random gradients: 64x16x14x14, 2.8 ms bincount, 1.3 ms flat; 64x40x7x7, 0.85 and 1.1 ms)."""
FLAT_MIN_CHUNK = 128
"""Fewest columns per product of the flat engine, however deep its stacked taps."""
BATCH_LAST_MAX_WIDTH = 16
"""Output rows shorter than this use the batch-last engine rather than im2col."""
MACS_PER_NUMBER = 8
"""Multiply-adds in a convolution's products that take about as long as one number in an
elementwise pass: how a convolution's work is weighed against `convcli.threads.MIN_SLICE_NUMBERS`
(a 1x1 convolution of 64 images of 14x14x16 to 8 channels, 1.6M multiply-adds, ran slower split
in two, a 3x3 one of 14.5M faster)."""
INDEX_BYTES = 8
"""numpy's ``intp``: what ``argmax`` returns (global max pooling keeps one per plane)."""


class Footprint(NamedTuple):
    """One op's memory on a batch, in bytes.

    ``own``: arrays the forward allocates and keeps in its cache; ``keeps_input``: whether the
    cache also holds the input itself (a view: no new bytes, but the input stays alive);
    ``forward``: the most the forward allocates at once, output included; ``backward``: the most
    its backward allocates at once beyond the cache, the incoming gradient and the returned one
    included.
    """

    own: int
    keeps_input: bool
    forward: int
    backward: int


def flat_chunk(k: int, b: int, total: int) -> int:
    """Columns per product of the flat engine for ``k`` stacked rows (all groups) of ``b`` bytes: about
    `FLAT_CHUNK_BYTES` of them, at least `FLAT_MIN_CHUNK`, at most ``total``.

    >>> flat_chunk(144, 4, 57_598), flat_chunk(4608, 4, 57_598), flat_chunk(144, 4, 100)
    (1820, 128, 100)
    """
    return min(total, max(FLAT_MIN_CHUNK, FLAT_CHUNK_BYTES // (k * b)))


def flat_span(k: int, b: int, n: int, plane: int, wq: int) -> int:
    """Columns of the flat engine's chunk buffers for ``k`` stacked rows (all groups) of ``b``
    bytes, on ``n`` image planes of ``plane = Hq * Wq`` numbers in rows of ``wq``: whole images
    while one fits in about `FLAT_CHUNK_BYTES` (at least `FLAT_MIN_CHUNK` columns), else whole
    rows of one image.

    >>> flat_span(144, 4, 64, 900, 30), flat_span(576, 4, 64, 81, 9), flat_span(9 * 32, 4, 64, 225, 15)
    (1800, 405, 900)
    """
    per = max(FLAT_MIN_CHUNK, FLAT_CHUNK_BYTES // (k * b))
    if per >= plane:
        return min(n, per // plane) * plane
    return max(1, per // wq) * wq


def row_chunk(k: int, run: int, oh: int, b: int, budget: int = FLAT_CHUNK_BYTES) -> int:
    """Output rows per product of the batch-last engine, for ``k`` stacked rows (all groups) of
    ``run = ow * N`` columns of ``b`` bytes: about ``budget`` bytes of them (`FLAT_CHUNK_BYTES`,
    or `BATCH_LAST_BACKWARD_BYTES` in the backward), one row at least.

    >>> row_chunk(288, 14 * 64, 14, 4), row_chunk(150, 10 * 64, 10, 4), row_chunk(150, 10 * 64, 10, 4, 2**22)
    (1, 2, 10)
    """
    return max(1, min(oh, budget // (k * run * b)))


def pool_chunk(image: int, n: int) -> int:
    """Images per pass of a pooling forward over ``n`` images of ``image`` bytes: about
    `POOL_CHUNK_BYTES` of them, one at least, ``n`` at most.

    >>> pool_chunk(32 * 28 * 28 * 4, 64), pool_chunk(16 * 14 * 14 * 4, 64), pool_chunk(2**21, 64)
    (10, 64, 1)
    """
    return max(1, min(n, POOL_CHUNK_BYTES // image))


def engine_fits(name: str, c_group: int, out_group: int, f: tuple[int, int], stride: tuple[int, int]) -> bool:
    """Whether engine ``name`` can run a convolution with ``c_group`` input and ``out_group``
    output channels per group: pointwise needs 1x1 windows; flat, im2col and batch-last run
    anything.

    >>> engine_fits("pointwise", 16, 32, (1, 1), (2, 2)), engine_fits("pointwise", 1, 1, (3, 3), (1, 1))
    (True, False)
    """
    return f == (1, 1) if name == "pointwise" else True


def conv_engine(
    c_group: int, out_group: int, f: tuple[int, int], stride: tuple[int, int], oh: int, ow: int, padded: tuple[int, int]
) -> str:
    """The engine `convcli.ops.conv` runs: pointwise for 1x1 windows; flat for one input and one
    output channel per group (depthwise: its chunks batch a channel's taps into one product, 2x
    faster than per-tap multiply-adds of whole planes on the digit networks' 7x7 to 28x28 maps:
    64x16x28x28, 7.7 / 9.2 ms forward / backward that way, 2.7 / 4.2 ms flat), and for
    at least `FLAT_MIN_CHANNELS` input channels per group on a padded plane of `FLAT_MIN_PIXELS`
    pixels ``Hp * Wp`` or more; batch-last for rows shorter than `BATCH_LAST_MAX_WIDTH`, else
    im2col.

    >>> conv_engine(1, 6, (3, 3), (1, 1), 28, 28, (30, 30)), conv_engine(16, 32, (3, 3), (2, 2), 14, 14, (30, 30))
    ('im2col', 'flat')
    >>> conv_engine(32, 32, (3, 3), (1, 1), 14, 14, (16, 16)), conv_engine(1, 1, (3, 3), (2, 2), 7, 7, (15, 15))
    ('batch-last', 'flat')
    """
    if engine_fits("pointwise", c_group, out_group, f, stride):
        return "pointwise"
    if c_group == 1 and out_group == 1:  # depthwise
        return "flat"
    if c_group >= FLAT_MIN_CHANNELS and padded[0] * padded[1] >= FLAT_MIN_PIXELS:
        return "flat"
    return "batch-last" if ow < BATCH_LAST_MAX_WIDTH else "im2col"


def conv_work(n: int, c_out: int, out: tuple[int, int], taps: int) -> int:
    """A convolution's work, in numbers (`MACS_PER_NUMBER`): ``n * c_out * oh * ow * taps``
    multiply-adds, ``taps = C_in/G * fh * fw``, over `MACS_PER_NUMBER`.

    >>> conv_work(64, 8, (14, 14), 16)
    200704
    """
    return n * c_out * out[0] * out[1] * taps // MACS_PER_NUMBER


def conv_footprint(
    n: int, c_in: int, c_out: int, hw: tuple[int, int], out: tuple[int, int], f: int, stride: int,
    pads: tuple[int, int, int, int], groups: int, b: int = 4, split: bool = False,
) -> Footprint:  # fmt: skip
    """What `convcli.ops.conv.conv2d_forward` keeps (`ConvCache`) for an (n, c_in, h, w) input.

    - flat engine: the padded input channels first, split into its ``s * s`` phases, each
      ``ceil(Hp / s) x ceil(Wp / s)`` (a copy, even without padding);
    - pointwise: the same at stride 1; strided, a copy of the pixels it reads, ``C * N * oh * ow``;
    - batch-last: the padded input turned ``(C, Hp, Wp, N)``, a copy;
    - im2col: every window as a column, ``C * f * f * N * oh * ow`` numbers.

    The weights in the cache are the layer's own (counted with the parameters). The forward also
    makes a padded copy and the matmul's output (and, batch-last, chunks turned to NCHW); the backward the transposed
    gradient, the columns' gradient and the padded input gradient (flat: chunks of stacked columns
    and of output; the gradient laid out as the output, chunks, the padded input gradient).

    ``split``: the batch runs in slices at the same time (`convcli.threads`). What is kept is the
    same, split; but the output and the input gradient are allocated whole before the slices
    start, so they are alive beside every slice's work arrays, and the pointwise and im2col
    engines' own outputs, already NCHW, are copied into place.

    >>> conv_footprint(2, 1, 4, (16, 16), (16, 16), 3, 1, (1, 1, 1, 1), 1).own == 1 * 9 * 2 * 256 * 4  # im2col
    True
    >>> conv_footprint(2, 1, 4, (8, 8), (8, 8), 3, 1, (1, 1, 1, 1), 1).own == 1 * 2 * 10 * 10 * 4  # batch-last
    True
    """
    (h, w), (oh, ow), (top, bottom, left, right) = hw, out, pads
    hp, wp = h + top + bottom, w + left + right
    x, y, xp = n * c_in * h * w * b, n * c_out * oh * ow * b, n * c_in * hp * wp * b
    padded = xp if (top, bottom, left, right) != (0, 0, 0, 0) else 0
    engine = conv_engine(c_in // groups, c_out // groups, (f, f), (stride, stride), oh, ow, (hp, wp))
    # the backward's dy, its work arrays, then the padded input gradient and its cropped copy; split,
    # the whole input gradient is alive beside all the slices' work arrays

    def work_then(work: int, crop: int) -> int:
        return work + x if split else max(work, crop)

    if engine == "pointwise":
        copy = y if split else 0
        if stride == 1:  # the (padded) input itself
            backward = y + (xp + x if padded else x + (x if split else 0))
            return Footprint(padded, not padded, padded + y + copy, backward)
        strided = n * c_in * oh * ow * b  # the strided pixels, copied
        return Footprint(strided, False, padded + strided + y + copy, y + work_then(strided + xp, xp + x))
    if engine == "flat":
        hq, wq = -(-hp // stride), -(-wp // stride)
        plane, reach = hq * wq, (f - 1) // stride * (wq + 1)
        phases = stride * stride * c_in * n * plane * b  # the padded input, channels first, by phase
        k = c_in * f * f  # stacked rows, all groups
        span = flat_span(k, b, n, plane, wq)
        chunks = (k + c_out) * span * b  # stacked columns and their product
        total = (n - 1) * plane + (oh - 1) * wq + ow
        cols = k * flat_chunk(k, b, total) * b  # the weight gradient's chunks
        taps = [-(-(f - a) // stride) * -(-(f - c) // stride) for a in range(stride) for c in range(stride)]
        dchunks = max((t * c_out + c_in) * flat_span(t * c_out, b, n, plane, wq) * b for t in taps)
        dyf = c_out * (reach + n * plane) * b  # the gradient laid out as the output, zeros in front
        backward = y + work_then(dyf + cols + xp + dchunks, xp + x)
        return Footprint(phases, False, padded + phases + chunks + y, backward)
    if engine == "batch-last":
        k, run = c_in * f * f, ow * n  # stacked rows of all groups; one output row's columns
        rows = row_chunk(k, run, oh, b)
        cols, part = k * rows * run * b, c_out * rows * run * b  # a chunk of columns, of output rows
        # the backward: the gradient batch last, its chunk of columns, the input gradient batch last
        # and then turned to NCHW beside it
        dcols = k * row_chunk(k, run, oh, b, BATCH_LAST_BACKWARD_BYTES) * run * b
        backward = y + work_then(y + dcols + 2 * xp, xp + x)
        # the padded input channels first and batch last: (C, Hp, Wp, N), a copy; the chunk of
        # output rows, and with several groups its transposed copy
        parts = part if groups == 1 else 2 * part
        return Footprint(xp, False, padded + xp + y + cols + parts, backward)
    cols = c_in * f * f * n * oh * ow * b
    # the input turned channels first is freed before the products write the output, NCHW already
    forward = padded + cols + (2 * y if split else max(xp, y))
    return Footprint(cols, False, forward, y + xp + work_then(y + cols, x))


def pool_footprint(
    n: int, c: int, hw: tuple[int, int], out: tuple[int, int], f: int, stride: int,
    pads: tuple[int, int, int, int], ceil_rows: tuple[int, int], mode: str, count_include_pad: bool, b: int = 4,
) -> Footprint:  # fmt: skip
    """What `convcli.ops.pool.pool2d_forward` keeps (`PoolCache`) for an (n, c, h, w) input.

    Max: the tap index of each window's maximum, one byte per output while the window has at most
    256 taps (numpy's smallest unsigned type), two bytes beyond. Average: nothing per image; the
    divisor is one number, or an (oh, ow) array when windows cover padding that is not counted
    or hang past it (``ceil_rows``: the rows and columns past the bottom and right padding).

    >>> pool_footprint(64, 32, (28, 28), (14, 14), 2, 2, (0, 0, 0, 0), (0, 0), "max", True).own
    401408
    """
    (h, w), (oh, ow), (top, bottom, left, right) = hw, out, pads
    hp, wp = h + top + bottom + ceil_rows[0], w + left + right + ceil_rows[1]
    x, y, xp = n * c * h * w * b, n * c * oh * ow * b, n * c * hp * wp * b
    padded = xp if (hp, wp) != (h, w) else 0
    outputs = n * c * oh * ow
    if mode == "max":
        index = 1 if f * f <= 256 else 2
        own = outputs * index
        # per chunk of images (`pool_chunk`): the padded copy and the search for the first maximum,
        # at stride 1 over whole padded planes (the running maximum, its index, two byte masks),
        # else two booleans and an index step per output
        per, plane = pool_chunk(c * h * w * b, n), c * hp * wp
        search = plane * (b + 3 * index) if stride == 1 else 3 * c * oh * ow
        forward = y + own + per * ((plane * b if padded else 0) + search)
        if (
            stride < f and stride == 1 and hp * wp >= FLAT_BACKWARD_MIN_PIXELS
        ):  # per chunk: gradient, index, mask, masked gradient, padded
            flat = pool_chunk(FLAT_BACKWARD_COPIES * c * hp * wp * b, n) * c * hp * wp * (2 * b + 1 + index)
            return Footprint(own, False, forward, y + xp + max(flat, x))
        if stride < f:  # overlapping windows: one bincount in float64 at int64 indices
            return Footprint(own, False, forward, y + 16 * outputs + 3 * xp + x)
        return Footprint(own, False, forward, y + xp + max(outputs + y, x))
    uniform = ceil_rows == (0, 0) and (count_include_pad or (top, bottom, left, right) == (0, 0, 0, 0))
    own = 0 if uniform else oh * ow * b
    return Footprint(own, False, padded + y + own, y + xp + max(y, x))


def global_pool_footprint(n: int, c: int, hw: tuple[int, int], mode: str, b: int = 4) -> Footprint:
    """What `convcli.ops.pool.global_pool2d_forward` keeps: for max, each plane's argmax
    (``intp``); for the mean, nothing.

    >>> global_pool_footprint(64, 128, (7, 7), "max").own
    65536
    """
    x, y = n * c * hw[0] * hw[1] * b, n * c * b
    own = n * c * INDEX_BYTES if mode == "max" else 0
    return Footprint(own, False, y + own, y + x)
