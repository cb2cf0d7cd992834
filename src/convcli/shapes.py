"""Shape arithmetic for one spatial axis, as pure integer functions.

Every function here works on one axis; apply it to H and W separately. The formulas are the
ones PyTorch documents for ``Conv2d``, ``MaxPool2d`` and ``ConvTranspose2d`` and TensorFlow for
``padding="SAME"``/``"VALID"`` (see shared/REFERENCE.md). Nothing here imports numpy: shape-calc,
params and flops must start fast.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

from convcli.errors import ShapeError

AxisPadding: TypeAlias = int | str | tuple[int, int]
"""Padding of one axis: an int for both sides, a mode (see `resolve_padding`), or ``(lo, hi)``."""

PADDING_MODES = ("valid", "same", "full", "tf")
CONVENTIONS = ("pytorch", "tf")
"""What ``same`` padding means: PyTorch's (stride 1 only) or TensorFlow's SAME (any stride)."""


def parse_padding(text: str, convention: str = "pytorch") -> int | str:
    """A padding as typed: a non-negative int or a mode; under the ``tf`` convention ``same`` is
    TensorFlow's SAME.

    >>> parse_padding("2"), parse_padding("Same"), parse_padding("same", "tf")
    (2, 'same', 'tf')
    """
    if convention not in CONVENTIONS:
        raise ShapeError(f"convention {convention!r} is not one of {', '.join(CONVENTIONS)}")
    value = text.strip().lower()
    if value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    if value not in PADDING_MODES:
        raise ShapeError(f"padding {text!r} is not a non-negative integer or one of {', '.join(PADDING_MODES)}")
    return "tf" if convention == "tf" and value == "same" else value


def effective_kernel(f: int, d: int = 1) -> int:
    """Size of a dilated kernel, ``f + (f - 1)(d - 1)``.

    >>> effective_kernel(3, 2)
    5
    """
    return f + (f - 1) * (d - 1)


def resolve_padding(
    padding: AxisPadding, n: int, f: int, s: int = 1, d: int = 1, what: str = "padding"
) -> tuple[int, int]:
    """Padding before and after one axis, ``(p_lo, p_hi)``.

    ``padding`` is an int (both sides), a pair, or a mode:

    - ``valid``: no padding.
    - ``same`` (stride 1 only, as PyTorch): total ``d(f-1)``, the odd one on the high side.
    - ``full``: ``d(f-1)`` on both sides, ``out = n + f_eff - 1``.
    - ``tf``: TensorFlow ``SAME`` for any stride: ``out = ceil(n/s)``, total
      ``max((out-1)s + f_eff - n, 0)``, the odd one on the high side.

    >>> resolve_padding("same", 7, 4)
    (1, 2)
    >>> resolve_padding("tf", 224, 3, 2)
    (0, 1)
    >>> resolve_padding("full", 5, 3)
    (2, 2)
    """
    f_eff = effective_kernel(f, d)
    if isinstance(padding, tuple):
        lo, hi = padding
    elif isinstance(padding, int):
        lo = hi = padding
    elif padding == "valid":
        lo = hi = 0
    elif padding == "same":
        if s != 1:
            raise ShapeError(
                f"{what}=same needs stride 1 (got s={s}), as in PyTorch; "
                "use p=tf for TensorFlow's SAME, which allows any stride"
            )
        total = f_eff - 1
        lo, hi = total // 2, total - total // 2
    elif padding == "full":
        lo = hi = f_eff - 1
    elif padding == "tf":
        out = -(-n // s)
        total = max((out - 1) * s + f_eff - n, 0)
        lo, hi = total // 2, total - total // 2
    else:
        raise ShapeError(f"{what}={padding!r} is not an int or one of {', '.join(PADDING_MODES)}")
    if lo < 0 or hi < 0:
        raise ShapeError(f"{what}={padding} is negative")
    return lo, hi


class AxisResult(NamedTuple):
    """The output size of one axis and what the window arithmetic left over.

    ``dropped`` counts the trailing input positions (padding included) that no window covers:
    ``(n + p_lo + p_hi - f_eff) mod s`` for floor mode.
    """

    out: int
    p_lo: int
    p_hi: int
    dropped: int = 0


def conv_axis(n: int, f: int, s: int = 1, padding: AxisPadding = 0, d: int = 1, what: str = "conv") -> AxisResult:
    """Output size of a convolution on one axis.

    ``out = floor((n + p_lo + p_hi - d(f-1) - 1)/s) + 1``, the course's
    ``floor((n + 2p - f)/s) + 1`` when ``d = 1``.

    >>> conv_axis(7, 3, 2).out
    3
    >>> conv_axis(224, 11, 4, 2)
    AxisResult(out=55, p_lo=2, p_hi=2, dropped=1)
    >>> conv_axis(39, 5, 2, 0).out
    18
    """
    _check_positive(what, n=n, f=f, s=s, d=d)
    p_lo, p_hi = resolve_padding(padding, n, f, s, d)
    span = n + p_lo + p_hi - effective_kernel(f, d)
    if span < 0:
        raise ShapeError(
            f"{what}: kernel f={f}"
            + (f" (dilated to {effective_kernel(f, d)})" if d > 1 else "")
            + f" is larger than the padded input {n + p_lo + p_hi} (n={n}, p={p_lo}+{p_hi})"
        )
    return AxisResult(span // s + 1, p_lo, p_hi, span % s)


def pool_axis(
    n: int,
    f: int,
    s: int | None = None,
    padding: AxisPadding = 0,
    d: int = 1,
    ceil: bool = False,
    what: str = "pool",
) -> AxisResult:
    """Output size of a pooling window on one axis; the stride defaults to the window size.

    Padding may be at most half the window (PyTorch's rule). With ``ceil`` a last partial
    window is kept, as long as it starts inside the input or its left padding:
    ``out = ceil((n + 2p - d(f-1) - 1)/s) + 1``, minus one if ``(out-1)s >= n + p``.

    >>> pool_axis(4, 2).out
    2
    >>> pool_axis(112, 3, 2, 0, ceil=True).out
    56
    >>> pool_axis(5, 2, ceil=True)
    AxisResult(out=3, p_lo=0, p_hi=0, dropped=0)
    """
    s = f if s is None else s
    _check_positive(what, n=n, f=f, s=s, d=d)
    p_lo, p_hi = resolve_padding(padding, n, f, s, d)
    if 2 * max(p_lo, p_hi) > f:
        detail = f" ({p_lo} before, {p_hi} after)" if isinstance(padding, str) else ""
        raise ShapeError(f"{what}: padding p={padding}{detail} is more than half the window f={f}")
    span = n + p_lo + p_hi - effective_kernel(f, d)
    if span < 0:
        raise ShapeError(f"{what}: window f={f} is larger than the padded input {n + p_lo + p_hi} (n={n})")
    if not ceil:
        return AxisResult(span // s + 1, p_lo, p_hi, span % s)
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p_lo:
        out -= 1
    return AxisResult(out, p_lo, p_hi, 0)


def conv_transpose_axis(
    n: int, f: int, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0, what: str = "convT"
) -> AxisResult:
    """Output size of a transposed convolution on one axis.

    ``out = (n-1)s - 2p + d(f-1) + output_padding + 1``; output_padding must be smaller than the
    stride or the dilation (PyTorch's rule).

    >>> conv_transpose_axis(4, 2, 2).out
    8
    >>> conv_transpose_axis(7, 3, 2, 1, output_padding=1).out
    14
    """
    _check_positive(what, n=n, f=f, s=s, d=d)
    if p < 0:
        raise ShapeError(f"{what}: padding p={p} is negative")
    if output_padding < 0 or (output_padding >= s and output_padding >= d):
        raise ShapeError(
            f"{what}: output_padding op={output_padding} must be smaller than the stride s={s} or the dilation d={d}"
        )
    out = (n - 1) * s - 2 * p + d * (f - 1) + output_padding + 1
    if out <= 0:
        raise ShapeError(f"{what}: output size {out} is not positive (n={n}, f={f}, s={s}, p={p})")
    return AxisResult(out, p, p, 0)


def _check_positive(what: str, **values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ShapeError(f"{what}: {name}={value} must be a positive integer")


class OneLayer(NamedTuple):
    """One layer on one axis with every number its formula shows (what ``shape-calc -n`` prints).

    ``kind`` is conv, pool or convT; ``s`` the stride used (pooling defaults it to ``f``);
    ``span`` is ``n + p_lo + p_hi - f_eff``, so that floor mode gives ``span // s + 1``;
    ``partial`` says ceil mode kept a last partial window.
    """

    kind: str
    n: int
    f: int
    s: int
    d: int
    f_eff: int
    padding: int | str
    p_lo: int
    p_hi: int
    output_padding: int
    ceil: bool
    out: int
    span: int
    dropped: int
    partial: bool


def axis(
    n: int,
    f: int,
    s: int | None = None,
    padding: int | str = 0,
    d: int = 1,
    *,
    pool: bool = False,
    ceil: bool = False,
    transposed: bool = False,
    output_padding: int = 0,
) -> OneLayer:
    """One layer on one axis, as ``convcli shape-calc -n N -f F ...`` asks for it.

    >>> axis(7, 3, 2).out
    3
    >>> axis(6, 2, pool=True).out
    3
    >>> axis(5, 2, pool=True, ceil=True)[-4:]
    (3, 3, 0, True)
    """
    if transposed and pool:
        raise ShapeError("--pool and --transposed describe two different layers: a pooling window, a transposed conv")
    if output_padding and not transposed:
        raise ShapeError("--output-padding applies only to a transposed convolution (--transposed)")
    if ceil and not pool:
        raise ShapeError("--ceil applies only to pooling (--pool)")
    stride = (f if pool else 1) if s is None else s
    if transposed:
        if not isinstance(padding, int):
            raise ShapeError(f"a transposed convolution takes an integer padding, not {padding!r}")
        result = conv_transpose_axis(n, f, stride, padding, d, output_padding)
    elif pool:
        result = pool_axis(n, f, stride, padding, d, ceil)
    else:
        result = conv_axis(n, f, stride, padding, d)
    f_eff = effective_kernel(f, d)
    span = n + result.p_lo + result.p_hi - f_eff
    return OneLayer(
        kind="convT" if transposed else "pool" if pool else "conv",
        n=n,
        f=f,
        s=stride,
        d=d,
        f_eff=f_eff,
        padding=padding,
        p_lo=result.p_lo,
        p_hi=result.p_hi,
        output_padding=output_padding,
        ceil=ceil,
        out=result.out,
        span=span,
        dropped=result.dropped,
        partial=ceil and result.out != span // stride + 1,
    )
