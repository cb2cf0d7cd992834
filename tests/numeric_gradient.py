"""Central-difference gradient checks in float64, shared by the nn tests.

``check_layer`` compares a layer's ``backward`` (input gradient and every parameter gradient)
against ``(f(v + h) - f(v - h)) / 2h`` of the scalar ``sum(forward(x) * g)`` for a random ``g``.
"""

from __future__ import annotations

import numpy as np


def numeric_grad(f, v: np.ndarray, h: float = 1e-6, samples: int | None = 40,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices checked and the numerical gradient of scalar ``f()`` there, perturbing ``v`` in place."""
    rng = rng or np.random.default_rng(0)
    flat = v.reshape(-1)
    idx = np.arange(flat.size) if samples is None or flat.size <= samples else rng.choice(flat.size, samples, replace=False)
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


def check_layer(layer, x: np.ndarray, train: bool = True, seed: int = 0, atol: float = 1e-6,
                rtol: float = 1e-5) -> None:
    """Assert ``layer.backward`` matches central differences for the input and every parameter."""
    rng = np.random.default_rng(seed)
    for key in layer.params:
        layer.params[key] = layer.params[key].astype(np.float64)
    x = x.astype(np.float64)
    y = layer.forward(x, train)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    analytic = {"x": dx, **{k: layer.grads[k] for k in layer.params}}

    def loss():
        return float(np.sum(layer.forward(x, train) * g))

    for name, v in [("x", x)] + list(layer.params.items()):
        idx, num = numeric_grad(loss, v, rng=rng)
        got = np.asarray(analytic[name]).reshape(-1)[idx]
        np.testing.assert_allclose(got, num, atol=atol, rtol=rtol, err_msg=f"gradient of {name}")
