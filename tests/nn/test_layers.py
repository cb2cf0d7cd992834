"""Every layer's backward against central differences (float64), plus forward semantics."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.nn import layers as L
from convcli.nn.loss import softmax_cross_entropy

from gradcheck import check_layer, numeric_grad

RNG = np.random.default_rng(7)


def x4(n=2, c=3, h=7, w=7, scale=1.0):
    return RNG.standard_normal((n, c, h, w)) * scale


@pytest.mark.parametrize(
    "kw",
    [
        dict(c_in=3, c_out=4, f=3),
        dict(c_in=3, c_out=4, f=3, stride=2, padding=1),
        dict(c_in=3, c_out=4, f=3, padding="same", dilation=2),
        dict(c_in=3, c_out=4, f=4, padding="same"),
        dict(c_in=3, c_out=2, f=3, stride=2, padding="tf"),
        dict(c_in=4, c_out=4, f=3, padding=1, groups=4, bias=False),
        dict(c_in=4, c_out=6, f=1, groups=2),
    ],
)
def test_conv_gradients(kw):
    c_in = kw["c_in"]
    layer = L.Conv2d(kw.pop("c_in"), kw.pop("c_out"), kw.pop("f"), np.random.default_rng(0), **kw)
    check_layer(layer, x4(c=c_in))


def test_conv_forward_matches_loops():
    layer = L.Conv2d(2, 3, 3, np.random.default_rng(1), stride=2, padding=1)
    x = x4(1, 2, 5, 5)
    y = layer.forward(x.astype(np.float32), True)
    w, b = layer.params["w"], layer.params["b"]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.array(
        [
            [[np.sum(xp[0, :, 2 * r : 2 * r + 3, 2 * c : 2 * c + 3] * w[o]) + b[o] for c in range(3)] for r in range(3)]
            for o in range(3)
        ]
    )
    np.testing.assert_allclose(y[0], ref, atol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        dict(f=2, stride=2),
        dict(f=3, stride=2, padding=1, mode="max"),
        dict(f=3, stride=2, ceil=True),
        dict(f=2, stride=2, mode="avg"),
        dict(f=3, stride=1, padding=1, mode="avg", count_include_pad=False),
    ],
)
def test_pool_gradients(kw):
    check_layer(L.Pool2d(**kw), x4())


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_global_pool_gradients(mode):
    check_layer(L.GlobalPool2d(mode), x4())


def test_flatten_and_linear_gradients():
    check_layer(L.Flatten(), x4())
    check_layer(L.Linear(3 * 7 * 7, 5, np.random.default_rng(0)), x4())
    check_layer(L.Linear(6, 4, np.random.default_rng(0), bias=False), RNG.standard_normal((3, 6)))


@pytest.mark.parametrize("name", sorted(L.ACTIVATIONS))
def test_activation_gradients(name):
    x = x4(scale=4.0)
    x[np.abs(x) < 1e-3] += 0.01  # keep away from kinks
    x[np.abs(x - 6) < 1e-3] += 0.01
    check_layer(L.Activation(name), x)


def test_activation_values():
    x = np.array([-2.0, 0.5, 7.0])
    assert L.Activation("relu6").forward(x, True).tolist() == [0, 0.5, 6]
    assert L.Activation("leakyrelu").forward(x, True).tolist() == [-0.02, 0.5, 7]
    np.testing.assert_allclose(L.Activation("sigmoid").forward(np.array([-800.0, 0, 800]), True), [0, 0.5, 1])


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 5)])
def test_batchnorm_gradients(train, shape):
    layer = L.BatchNorm(shape[1])
    layer.params["gamma"] = RNG.uniform(0.5, 1.5, shape[1])
    layer.params["beta"] = RNG.standard_normal(shape[1])
    layer.buffers["mean"] = RNG.standard_normal(shape[1]).astype(np.float32)
    check_layer(layer, RNG.standard_normal(shape) * 2 + 1, train=train)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("act", L.FUSED_ACTIVATIONS)
def test_batchnorm_with_its_activation(train, act):
    """A batch norm applying a ReLU or ReLU6 computes what the two layers do, gradients included."""
    shape = (4, 3, 5, 5)
    fused, alone = L.BatchNorm(3, act=act), L.BatchNorm(3)
    for layer in (fused, alone):
        layer.params["gamma"] = np.array([0.8, 1.3, 4.0])
        layer.params["beta"] = np.array([0.1, -0.2, 3.0])
    x = RNG.standard_normal(shape) * 2 + 1
    check_layer(fused, x, train=train)
    relu = L.Activation(act)
    y = fused.forward(x, train, keep=True)
    assert ((y == 0).any(), (y == 6).any()) == (True, act == "relu6")  # both kinks are reached
    np.testing.assert_allclose(y, relu.forward(alone.forward(x, train, keep=True), train, keep=True), rtol=1e-12)
    dy = RNG.standard_normal(shape)
    np.testing.assert_allclose(fused.backward(dy), alone.backward(relu.backward(dy)), rtol=1e-10, atol=1e-12)
    for key in ("gamma", "beta"):
        np.testing.assert_allclose(fused.grads[key], alone.grads[key], rtol=1e-10)


def test_batchnorm_statistics():
    layer = L.BatchNorm(3)
    x = RNG.standard_normal((8, 3, 4, 4)) * 3 + 2
    y = layer.forward(x, True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-3)
    # PyTorch's rule: running = 0.9 running + 0.1 batch, variance unbiased
    np.testing.assert_allclose(layer.buffers["mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(layer.buffers["var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    out = layer.forward(x, False)
    expect = (x - layer.buffers["mean"][:, None, None]) / np.sqrt(layer.buffers["var"][:, None, None] + 1e-5)
    np.testing.assert_allclose(out, expect, rtol=1e-5)


def test_dropout():
    layer = L.Dropout(0.25, np.random.default_rng(0))
    x = np.ones((200, 50))
    y = layer.forward(x, True)
    assert set(np.unique(y).tolist()) == {0.0, 4 / 3}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    assert layer.forward(x, False) is x


def test_softmax_cross_entropy_gradient():
    logits = RNG.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    _, grad = softmax_cross_entropy(logits, labels)
    idx, num = numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits, samples=None)
    np.testing.assert_allclose(grad.reshape(-1)[idx], num, atol=1e-7)


def test_softmax_cross_entropy_large_logits():
    loss, grad = softmax_cross_entropy(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(500.0)
    assert np.isfinite(grad).all()


def test_he_and_glorot_scale():
    rng = np.random.default_rng(0)
    assert L.he_normal(rng, (200, 500), 500).std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    w = L.glorot_uniform(rng, (200, 500), 500, 200)
    assert np.abs(w).max() <= np.sqrt(6 / 700) and w.dtype == np.float32
