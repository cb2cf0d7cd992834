"""Central-difference gradient checks in float64, for every op's and layer's backward.

Ops use ``numerical_gradients`` (every element); layers use ``check_layer`` (a random sample of
each parameter's elements, for the input and every parameter).

    y = f(x, w)                       # any function of float64 arrays
    numeric = numerical_gradients(f, [x, w], dy)
    assert_gradients_close([dx, dw], numeric)

The scalar that is differentiated is ``sum(f(*arrays) * dy)``, so the numeric gradients are what
a backward given ``dy`` must return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def numeric_grad(
    f: Callable[[], float],
    v: np.ndarray,
    h: float = 1e-6,
    samples: int | None = 40,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices checked and ``(f(v + h) - f(v - h)) / 2h`` there, perturbing ``v`` in place.

    ``samples`` indices are drawn at random (all of them when None or when ``v`` is that small).
    """
    rng = rng or np.random.default_rng(0)
    flat = v.reshape(-1)
    if samples is None or flat.size <= samples:
        idx = np.arange(flat.size)
    else:
        idx = rng.choice(flat.size, samples, replace=False)
    out = np.empty(len(idx))
    for k, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        out[k] = (plus - minus) / (2 * h)
    return idx, out


def numerical_gradients(
    f: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], dy: np.ndarray, eps: float = 1e-6
) -> list[np.ndarray]:
    """d sum(f(*arrays) * dy) / d array, for each array, by central differences at every element."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]

    def loss() -> float:
        return float(np.sum(f(*arrays) * dy))

    return [numeric_grad(loss, a, eps, samples=None)[1].reshape(a.shape) for a in arrays]


def assert_gradients_close(
    analytic: Sequence[np.ndarray],
    numeric: Sequence[np.ndarray],
    rtol: float = 1e-5,
    atol: float = 1e-7,
    names: Sequence[str] = (),
) -> None:
    """Each analytic gradient matches its numeric one (same shape, close values)."""
    for k, (a, n) in enumerate(zip(analytic, numeric, strict=True)):
        name = names[k] if k < len(names) else f"gradient {k}"
        assert np.shape(a) == np.shape(n), f"{name}: shape {np.shape(a)} != {np.shape(n)}"
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=name)


def check_layer(
    layer, x: np.ndarray, train: bool = True, seed: int = 0, atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Assert ``layer.backward`` matches central differences for the input and every parameter."""
    rng = np.random.default_rng(seed)
    for key in layer.params:
        layer.params[key] = layer.params[key].astype(np.float64)
    x = x.astype(np.float64)
    y = layer.forward(x, train, keep=True)  # an evaluation forward keeps its cache only when asked
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    analytic = {"x": dx, **{k: layer.grads[k] for k in layer.params}}

    def loss():
        return float(np.sum(layer.forward(x, train) * g))

    for name, v in [("x", x)] + list(layer.params.items()):
        idx, num = numeric_grad(loss, v, rng=rng)
        got = np.asarray(analytic[name]).reshape(-1)[idx]
        np.testing.assert_allclose(got, num, atol=atol, rtol=rtol, err_msg=f"gradient of {name}")
