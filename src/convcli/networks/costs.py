"""Parameter and multiply-accumulate (MAC) counts, one pure function a layer type.

The formulas are the ones shared/REFERENCE.md collects (PyTorch's parameter conventions; MACs as
torchvision, fvcore and ptflops count them). A MAC is one multiply and one add; the usual
"FLOPs" figure is 2 x MACs, see :data:`EXTRA_KINDS` for what else can be counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from convcli.errors import SpecError

EXTRA_KINDS = {
    "bias": "bias adds (one per output of a conv or fc with bias)",
    "bn": "batch norm (2 per element: scale and shift)",
    "act": "activations (1 per element)",
    "pool": "pooling (max: f^2-1 comparisons, avg: f^2 adds per output)",
    "add": "residual adds (1 per element)",
    "mul": "scaling multiplies (squeeze-and-excitation: 1 per element)",
}


@dataclass(frozen=True)
class Counting:
    """The conventions a count follows: ``bias`` counts conv and fc layers with their biases,
    ``keras`` counts batch norm running statistics as (non-trainable) parameters as Keras does,
    ``include`` names the operations besides MACs that FLOPs add (keys of :data:`EXTRA_KINDS`)."""

    bias: bool = True
    keras: bool = False
    include: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.include) - set(EXTRA_KINDS)
        if unknown:
            raise SpecError(f"include={sorted(unknown)[0]!r} is not one of {', '.join(EXTRA_KINDS)}")

    def non_trainable(self, frozen: int, buffers: int) -> int:
        """Fixed weights, and batch norm statistics when counting as Keras does.

        >>> Counting().non_trainable(840, 128), Counting(keras=True).non_trainable(840, 128)
        (840, 968)
        """
        return frozen + (buffers if self.keras else 0)

    def flops(self, macs: int, extra: dict[str, int]) -> int:
        """``2 MACs`` plus the included operations of ``extra`` (counts by kind).

        >>> Counting(include=frozenset({"bias"})).flops(100, {"bias": 10, "act": 5})
        210
        """
        return 2 * macs + sum(extra.get(kind, 0) for kind in self.include)


class Totals(NamedTuple):
    """A network's totals under one :class:`Counting` (``params`` = trainable + non-trainable)."""

    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int
    activations: int


def conv_params(c_in: int, c_out: int, f: int, g: int = 1, bias: bool = True, connections: int | None = None) -> int:
    """``C_out (C_in/g) f^2 + b C_out``; with a sparse table, ``connections f^2 + b C_out``.

    >>> conv_params(3, 64, 11, bias=True)
    23296
    >>> conv_params(6, 16, 5, connections=60)
    1516
    """
    links = connections if connections is not None else c_out * (c_in // g)
    return links * f * f + (c_out if bias else 0)


def conv_macs(h_out: int, w_out: int, c_in: int, c_out: int, f: int, g: int = 1, connections: int | None = None) -> int:
    """``H_out W_out C_out (C_in/g) f^2`` (or ``H_out W_out connections f^2``).

    >>> conv_macs(55, 55, 3, 64, 11)
    70276800
    """
    links = connections if connections is not None else c_out * (c_in // g)
    return h_out * w_out * links * f * f


def conv_transpose_params(c_in: int, c_out: int, f: int, g: int = 1, bias: bool = True) -> int:
    """``C_in (C_out/g) f^2 + b C_out``.

    >>> conv_transpose_params(64, 32, 2)
    8224
    """
    return c_in * (c_out // g) * f * f + (c_out if bias else 0)


def conv_transpose_macs(h_in: int, w_in: int, c_in: int, c_out: int, f: int, g: int = 1) -> int:
    """Counted on the *input* size: ``H_in W_in C_in (C_out/g) f^2`` (every input pixel scatters a
    full kernel); counting on the output size overstates it by about ``s^2``.

    >>> conv_transpose_macs(4, 4, 64, 32, 2)
    131072
    """
    return h_in * w_in * c_in * (c_out // g) * f * f


def fc_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """``n_in n_out + b n_out``.

    >>> fc_params(400, 120)
    48120
    """
    return n_in * n_out + (n_out if bias else 0)


def fc_macs(n_in: int, n_out: int) -> int:
    """``n_in n_out``.

    >>> fc_macs(4096, 1000)
    4096000
    """
    return n_in * n_out


def batchnorm_params(c: int) -> tuple[int, int]:
    """``(2C trainable: gamma and beta, 2C running statistics: mean and variance)``.

    PyTorch counts only the first as parameters (the statistics are buffers); Keras shows both,
    the statistics as non-trainable.

    >>> batchnorm_params(64)
    (128, 128)
    """
    return 2 * c, 2 * c


def pool_ops(out_elements: int, f_h: int, f_w: int, kind: str) -> int:
    """Operations of a pooling layer (not MACs): max takes ``f^2 - 1`` comparisons per output,
    average ``f^2`` adds (the divide folded in).

    >>> pool_ops(4, 2, 2, "max"), pool_ops(4, 2, 2, "avg")
    (12, 16)
    """
    per = f_h * f_w - 1 if kind == "max" else f_h * f_w
    return out_elements * per


def separable_ratio(c_out: int, f: int) -> float:
    """Depthwise-separable over standard convolution cost, ``1/C_out + 1/f^2`` (MobileNet, eq. 5).

    >>> round(separable_ratio(256, 3), 4)
    0.115
    """
    return 1 / c_out + 1 / (f * f)
