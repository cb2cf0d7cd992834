"""Layers: thin holders of weights whose math is the functional ops of `convcli.ops`.

Every layer has ``forward(x, train, keep)`` returning its output and ``backward(dy)`` returning
the gradient with respect to its input, filling ``grads`` (same keys as ``params``) on the way.
``buffers`` hold state that is saved but not trained (batch norm running statistics). ``train``
says which statistics batch norm uses and whether dropout drops; ``keep`` whether the forward
keeps what its backward needs in ``self._cache`` (default: ``train``). An evaluation forward thus
keeps nothing (no columns, masks or argmax: inference holds one layer's arrays at a time), and a
backward after it raises; Grad-CAM, which needs the gradient of a model in evaluation mode, asks
for ``keep=True``. One backward per forward. What each forward keeps, in bytes, is counted from
shapes alone in `convcli.nn.memory` (convolution and pooling in `convcli.ops.footprint`), and
tests/nn/test_memory.py weighs these caches against it: a change to a cache is a change there too.

Layout is NCHW, ``(N, C, H, W)`` for feature maps and ``(N, F)`` once flattened.
"""

from __future__ import annotations

import numpy as np

from convcli.ops.choices import FUSED_ACTIVATIONS  # noqa: F401  (re-exported: what BatchNorm.act and Conv2d.act may be)
from convcli.ops.conv import conv2d_backward, conv2d_forward, conv2d_inference
from convcli.ops.pool import (
    global_pool2d,
    global_pool2d_backward,
    global_pool2d_forward,
    pool2d,
    pool2d_backward,
    pool2d_forward,
)
from convcli.ops.windows import Padding2d
from convcli.threads import map_slices


class Layer:
    """Base class: no parameters, identity."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._cache = None

    def forward(self, x: np.ndarray, train: bool, keep: bool | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _kept(self):
        """The cache, which only a forward with ``keep`` leaves."""
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward: its forward kept nothing for a backward (an evaluation "
                "forward keeps nothing unless run with keep=True)"
            )
        return self._cache


def keeps(train: bool, keep: bool | None) -> bool:
    """Whether a forward keeps its cache: ``keep``, by default ``train``."""
    return train if keep is None else keep


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """He et al. 2015: N(0, 2 / fan_in), for ReLU networks."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    """Glorot & Bengio 2010: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape).astype(np.float32)


def init_weight(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, scheme: str) -> np.ndarray:
    if scheme == "he":
        return he_normal(rng, shape, fan_in)
    return glorot_uniform(rng, shape, fan_in, fan_out)


class Conv2d(Layer):
    """Convolution; ``groups == C_in`` is depthwise. Weights (C_out, C_in/groups, f, f).

    ``act`` (one of `FUSED_ACTIVATIONS`) is set only in an inference model
    (`convcli.nn.fold.fold_batch_norm`), whose forward keeps nothing: the convolution then applies
    the ReLU or ReLU6 that follows it with its bias."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        f: int,
        rng: np.random.Generator,
        *,
        stride: int = 1,
        padding: Padding2d = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        init: str = "he",
    ) -> None:
        super().__init__()
        fan_in, fan_out = c_in // groups * f * f, c_out // groups * f * f
        self.params["w"] = init_weight(rng, (c_out, c_in // groups, f, f), fan_in, fan_out, init)
        if bias:
            self.params["b"] = np.zeros(c_out, np.float32)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.input_grad = True  # the model turns it off for its first layer while training
        self.act: str | None = None

    def forward(self, x, train, keep=None):
        w, b = self.params["w"], self.params.get("b")
        options = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}
        if not keeps(train, keep) or self.act is not None:
            self._cache = None
            return conv2d_inference(x, w, b, act=self.act, **options)
        y, self._cache = conv2d_forward(x, w, b, **options)
        return y

    def backward(self, dy):
        dx, dw, db = conv2d_backward(dy, self._kept(), need_dx=self.input_grad)
        self.grads["w"] = dw
        if db is not None:
            self.grads["b"] = db
        return dx


class Pool2d(Layer):
    """Max or average pooling over f x f windows."""

    def __init__(
        self,
        f: int,
        *,
        stride: int,
        padding: Padding2d = 0,
        ceil: bool = False,
        mode: str = "max",
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.f, self.stride, self.padding, self.ceil = f, stride, padding, ceil
        self.mode, self.count_include_pad = mode, count_include_pad

    def forward(self, x, train, keep=None):
        options = {"stride": self.stride, "padding": self.padding, "ceil": self.ceil, "mode": self.mode}
        options["count_include_pad"] = self.count_include_pad
        if not keeps(train, keep):  # max pooling without the argmax
            self._cache = None
            return pool2d(x, self.f, **options)
        y, self._cache = pool2d_forward(x, self.f, **options)
        return y

    def backward(self, dy):
        return pool2d_backward(dy, self._kept())


class GlobalPool2d(Layer):
    """Each (H, W) plane to its mean or maximum: (N, C, 1, 1)."""

    def __init__(self, mode: str = "avg") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x, train, keep=None):
        if not keeps(train, keep):
            self._cache = None
            return global_pool2d(x, self.mode)
        y, self._cache = global_pool2d_forward(x, self.mode)
        return y

    def backward(self, dy):
        return global_pool2d_backward(dy, self._kept())


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), channel-major as PyTorch flattens."""

    def forward(self, x, train, keep=None):
        self._cache = x.shape if keeps(train, keep) else None
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape(self._kept())


class Linear(Layer):
    """Fully connected: ``y = x @ w.T + b`` with w (units, n_in); a (N, C, 1, 1) input is flattened."""

    def __init__(self, n_in: int, units: int, rng: np.random.Generator, *, bias: bool = True, init: str = "he") -> None:
        super().__init__()
        self.params["w"] = init_weight(rng, (units, n_in), n_in, units, init)
        if bias:
            self.params["b"] = np.zeros(units, np.float32)

    def forward(self, x, train, keep=None):
        x2 = x.reshape(len(x), -1)  # N, n_in
        self._cache = (x.shape, x2) if keeps(train, keep) else None
        y = x2 @ self.params["w"].T
        if "b" in self.params:
            y += self.params["b"]
        return y

    def backward(self, dy):
        shape, x2 = self._kept()
        self.grads["w"] = dy.T @ x2
        if "b" in self.params:
            self.grads["b"] = dy.sum(axis=0)
        return (dy @ self.params["w"]).reshape(shape)


class Activation(Layer):
    """Elementwise nonlinearity by name (see ``ACTIVATIONS``).

    ``fused`` (set by `convcli.nn.model.build_model`) makes it the identity: the batch norm before
    it applies it (`BatchNorm.act`)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._fn, self._grad = ACTIVATIONS[name]
        self.fused = False

    def forward(self, x, train, keep=None):
        if self.fused:
            return x
        y = np.empty_like(x)
        map_slices(lambda s: self._fn(x[s], y[s]), len(x), 2 * x.size)
        # the derivatives of all but swish are functions of the output alone
        self._cache = (x if self.name == "swish" else None, y) if keeps(train, keep) else None
        return y

    def backward(self, dy):
        if self.fused:
            return dy
        x, y = self._kept()
        dx = np.empty_like(dy)
        map_slices(
            lambda s: np.multiply(dy[s], self._grad(None if x is None else x[s], y[s]), out=dx[s]), len(dy), 3 * dy.size
        )
        return dx


def _sigmoid(x):
    # exp of a non-positive number never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _leaky_relu(x, out):
    # max(x, slope * x) is x where x > 0 and slope * x elsewhere, for 0 < slope < 1
    np.multiply(x, LEAKY_SLOPE, out=out)
    return np.maximum(x, out, out=out)


LEAKY_SLOPE = 0.01  # PyTorch's nn.LeakyReLU default

# name -> (f(x, out) writing into out, f'(x) from x and y = f(x)); x is None for all but swish
# (see Activation.forward)
ACTIVATIONS = {
    "relu": (lambda x, out: np.maximum(x, 0, out=out), lambda x, y: y > 0),
    "relu6": (lambda x, out: np.clip(x, 0, 6, out=out), lambda x, y: (y > 0) & (y < 6)),
    "leakyrelu": (_leaky_relu, lambda x, y: np.where(y > 0, 1, LEAKY_SLOPE).astype(y.dtype)),
    "tanh": (lambda x, out: np.tanh(x, out=out), lambda x, y: 1 - y * y),
    "sigmoid": (lambda x, out: np.copyto(out, _sigmoid(x)), lambda x, y: y * (1 - y)),
    "swish": (
        lambda x, out: np.multiply(x, _sigmoid(x), out=out),
        lambda x, y: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
    ),
}


def _channel_rows(a: np.ndarray) -> np.ndarray:
    """(N, C, P) to (N, C): each image's sum per channel, along the contiguous P; summed over N
    (`_channel_total`), the per-channel sum of the batch. einsum's loop runs 2 to 4 times as fast
    as ``a.sum(axis=2)`` here (numpy 2.4, one thread: 0.09 against 0.17 ms for 64x16x784, 0.02
    against 0.09 ms for 64x64x49), whose reduction restarts for every row of P."""
    return np.einsum("ijk->ij", a)


def _channel_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, C, P) twice to (N, C): each image's ``sum over P of a * b``, without the product's array."""
    n, c, p = a.shape
    return np.einsum("ij,ij->i", a.reshape(n * c, p), b.reshape(n * c, p)).reshape(n, c)


def _channel_total(parts: list[np.ndarray]) -> np.ndarray:
    """The slices' (n, C) rows to (C,): their sum over the whole batch, in image order, so that
    any split of the batch gives the same numbers."""
    return np.concatenate(parts).sum(axis=0)


def _channel_plane(v: np.ndarray, p: int, dtype: np.dtype) -> np.ndarray:
    """(C,) to a contiguous (C, P): each channel's number repeated over its P positions. An
    (N, C, P) array and a (C, P) one make one contiguous inner loop of C * P numbers per image;
    against ``v[:, None]`` numpy runs one short loop per channel and image, and the multiply took
    1.5 to 2.5 times as long (numpy 2.4, one thread, 64x16x784: 0.37 against 0.14-0.25 ms)."""
    return np.ascontiguousarray(np.broadcast_to(v.astype(dtype, copy=False)[:, None], (len(v), p)))


class BatchNorm(Layer):
    """Batch normalisation over N (and H, W for feature maps), as PyTorch's BatchNorm1d/2d.

    Training normalises with the batch statistics and updates the running ones with
    ``momentum`` (PyTorch's 0.1; the running variance uses the unbiased batch variance);
    evaluation normalises with the running statistics. ``act`` (one of `FUSED_ACTIVATIONS`, set by
    `convcli.nn.model.build_model` when a ReLU or ReLU6 follows) applies that activation to the
    output in place, and its derivative in the backward, from the output.

    With ``xc = x - mean`` and ``inv = 1 / sqrt(var + eps)``, ``y = xc * (gamma * inv) + beta``;
    the backward through the batch statistics, with ``m`` values per channel, is
    ``dx = gamma * inv * (dy - sum(dy) / m - xc * inv**2 * sum(dy * xc) / m)``.

    Each pass runs per slice of the batch (`convcli.threads.map_slices`): the statistics are
    per-image sums, added up over the batch between the passes. A pass is weighed as one array's
    numbers: its few elementwise ops take 0.1 to 0.5 ms on 64x16x28x28, and handing a slice to the
    pool's thread some 50-100 us, so that on 2 cores these passes ran faster split only from
    64x16x28x28 on (64x32x14x14 and 64x64x7x7 ran 5-45% slower split); the first, the sums for the
    mean (one read of x), runs inline.
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1, act: str | None = None) -> None:
        super().__init__()
        self.params["gamma"] = np.ones(channels, np.float32)
        self.params["beta"] = np.zeros(channels, np.float32)
        self.buffers["mean"] = np.zeros(channels, np.float32)
        self.buffers["var"] = np.ones(channels, np.float32)
        self.eps, self.momentum, self.act = eps, momentum, act

    def forward(self, x, train, keep=None):
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)  # N, C, H*W (or N, C, 1)
        p = x3.shape[2]
        m, work = n * p, x3.size
        dtype = x.dtype
        xc = np.empty(x3.shape, dtype=dtype)
        if train:
            mean = _channel_total([_channel_rows(x3)]) / dtype.type(m)
            mean_plane = _channel_plane(mean, p, dtype)

            def centre(s):
                np.subtract(x3[s], mean_plane, out=xc[s])
                return _channel_dots(xc[s], xc[s])

            var = _channel_total(map_slices(centre, n, work)) / dtype.type(m)
            unbiased = var * (m / max(m - 1, 1))
            self.buffers["mean"] = ((1 - self.momentum) * self.buffers["mean"] + self.momentum * mean).astype(
                np.float32
            )
            self.buffers["var"] = ((1 - self.momentum) * self.buffers["var"] + self.momentum * unbiased).astype(
                np.float32
            )
        else:
            mean, var = self.buffers["mean"].astype(dtype), self.buffers["var"].astype(dtype)
            mean_plane = _channel_plane(mean, p, dtype)
        inv = (1 / np.sqrt(var + self.eps)).astype(dtype, copy=False)
        scale = _channel_plane(self.params["gamma"] * inv, p, dtype)
        beta = _channel_plane(self.params["beta"], p, dtype)
        keep = keeps(train, keep)
        # without a backward to come, x - mean is not kept: the output is made in its place
        y = np.empty(x3.shape, dtype=dtype) if keep else xc

        def normalise(s):
            if not train:
                np.subtract(x3[s], mean_plane, out=xc[s])
            out = np.multiply(xc[s], scale, out=y[s])
            out += beta
            if self.act == "relu":
                np.maximum(out, 0, out=out)
            elif self.act == "relu6":
                np.clip(out, 0, 6, out=out)

        map_slices(normalise, n, work)
        self._cache = (xc, inv, y if self.act else None, train) if keep else None
        return y.reshape(x.shape)

    def backward(self, dy):
        xc, inv, y, train = self._kept()
        shape, n = dy.shape, len(dy)
        dy3, work = dy.reshape(xc.shape), xc.size
        # the fused activation's derivative, from its output, makes a new gradient: then dx is
        # computed in place in it
        g = dy3 if y is None else np.empty_like(xc)

        def sums(s):
            if y is not None:
                mask = y[s] > 0
                if self.act == "relu6":
                    mask &= y[s] < 6
                np.multiply(dy3[s], mask, out=g[s])
            return _channel_rows(g[s]), _channel_dots(g[s], xc[s])

        parts = map_slices(sums, n, work)
        dbeta, dot = _channel_total([p[0] for p in parts]), _channel_total([p[1] for p in parts])
        self.grads["beta"], self.grads["gamma"] = dbeta, dot * inv
        k0 = self.params["gamma"].astype(inv.dtype, copy=False) * inv
        m = xc.shape[0] * xc.shape[2]
        p = xc.shape[2]
        k1, k2 = _channel_plane(k0 * inv * inv * dot / m, p, xc.dtype), _channel_plane(k0 * dbeta / m, p, xc.dtype)
        k0 = _channel_plane(k0, p, xc.dtype)
        dx = g if y is not None else np.empty_like(xc)

        def grad(s):
            out = np.multiply(g[s], k0, out=dx[s])
            if train:  # xc * k1 + k2 in xc's place: no new array, and in-place ops are the faster
                tmp = np.multiply(xc[s], k1, out=xc[s])
                tmp += k2
                out -= tmp

        map_slices(grad, n, work)
        self._cache = None  # xc is spent: one backward per forward
        return dx.reshape(shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero a ``rate`` of the activations and scale the rest by
    1 / (1 - rate); identity in evaluation."""

    def __init__(self, rate: float, rng: np.random.Generator) -> None:
        super().__init__()
        self.rate, self.rng = rate, rng
        self._identity = True

    def forward(self, x, train, keep=None):
        self._identity = not train or self.rate == 0
        if self._identity:  # its backward needs nothing
            self._cache = None
            return x
        kept = self.rng.random(x.shape) >= self.rate
        scale = kept.astype(x.dtype) / np.asarray(1 - self.rate, x.dtype)
        self._cache = scale if keeps(train, keep) else None
        return x * scale

    def backward(self, dy):
        return dy if self._identity else dy * self._kept()
