"""Central-difference gradient checks in float64, for every op's and layer's backward.

    y = f(x, w)                       # any function of float64 arrays
    numeric = numerical_gradients(f, [x, w], dy)
    assert_gradients_close([dx, dw], numeric)

The scalar that is differentiated is ``sum(f(*arrays) * dy)``, so the numeric gradients are what
a backward given ``dy`` must return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def numerical_gradients(f: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], dy: np.ndarray,
                        eps: float = 1e-6) -> list[np.ndarray]:
    """d sum(f(*arrays) * dy) / d array, for each array, by central differences."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            saved = a[index]
            a[index] = saved + eps
            plus = np.sum(f(*arrays) * dy)
            a[index] = saved - eps
            minus = np.sum(f(*arrays) * dy)
            a[index] = saved
            grad[index] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def assert_gradients_close(analytic: Sequence[np.ndarray], numeric: Sequence[np.ndarray],
                           rtol: float = 1e-5, atol: float = 1e-7, names: Sequence[str] = ()) -> None:
    """Each analytic gradient matches its numeric one (same shape, close values)."""
    for k, (a, n) in enumerate(zip(analytic, numeric, strict=True)):
        name = names[k] if k < len(names) else f"gradient {k}"
        assert np.shape(a) == np.shape(n), f"{name}: shape {np.shape(a)} != {np.shape(n)}"
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=name)
