"""The worker count and the batch slices of `convcli.threads`, and every op that splits its batch
against the same op on one worker: conv (each engine) forward and backward, pooling, batch norm,
activations, and a whole training step of each digit network. Two workers may only change the
summation order of what is added across slices (weight gradients), so the outputs are compared
within float32 noise, and a run is repeated to show it is deterministic."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from convcli import threads
from convcli.errors import InputError
from convcli.networks.report import analyse
from convcli.networks.zoo import DIGIT_NETWORKS, get
from convcli.nn import layers as L
from convcli.nn.loss import softmax_cross_entropy
from convcli.nn.model import build_model
from convcli.ops.conv import ENGINES, conv2d, conv2d_backward, conv2d_forward
from convcli.ops.pool import pool2d_backward, pool2d_forward


@pytest.fixture(autouse=True)
def split_everything(monkeypatch):
    """Every op splits its batch, however small the test's arrays."""
    monkeypatch.setattr(threads, "MIN_SLICE_NUMBERS", 1)


def assert_f32_close(a, b):
    """Equal but for float32 summation order: within 1e-5 of the largest magnitude, or 1e-8 for a
    gradient that is the small remainder of a sum over the batch (a batch norm's beta in front of
    a softmax: its terms cancel, and their rounding does not)."""
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=max(1e-5 * float(np.abs(a).max(initial=0)), 1e-8))


def test_the_environment_sets_the_worker_count(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.workers() == 3
    with threads.using(1):
        assert threads.workers() == 1  # `using` wins over the environment
    monkeypatch.setenv(threads.ENV, "0")
    with pytest.raises(InputError, match=threads.ENV):
        threads.workers()


def test_without_the_variable_every_cpu_this_process_may_use(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads.workers() == expected


def test_one_worker_runs_inline_on_the_calling_thread():
    seen = []
    with threads.using(1):
        out = threads.map_slices(lambda s: seen.append(threading.current_thread()) or (s.start, s.stop), 64, 10**9)
    assert out == [(0, 64)] and seen == [threading.current_thread()]


def test_two_workers_split_into_contiguous_slices_run_at_once():
    both_running = threading.Barrier(2, timeout=30)  # broken unless the two slices run together

    def record(s):
        both_running.wait()
        return s.start, s.stop, threading.current_thread()

    with threads.using(2):
        out = threads.map_slices(record, 9, 10**9)
        small = threads.map_slices(lambda s: (s.start, s.stop), 9, threads.MIN_SLICE_NUMBERS)
        nested = threads.map_slices(lambda s: threads.slices_for(9, 10**9), 9, 10**9)
    assert [o[:2] for o in out] == [(0, 5), (5, 9)] and out[0][2] is not out[1][2]
    assert small == [(0, 9)]  # no slice under MIN_SLICE_NUMBERS
    assert nested == [[slice(0, 9)]] * 2  # a slice's own work is not split again


def test_an_error_in_a_slice_reaches_the_caller():
    def fail(s):
        if s.start:
            raise ValueError("second slice")

    with threads.using(2), pytest.raises(ValueError, match="second slice"):
        threads.map_slices(fail, 8, 10**9)


@pytest.mark.parametrize("n,parts", [(1, 2), (7, 2), (64, 3), (5, 8)])
def test_split_batch_covers_the_batch_once_in_order(n, parts):
    slices = threads.split_batch(n, parts)
    sizes = [s.stop - s.start for s in slices]
    assert slices[0].start == 0 and slices[-1].stop == n and max(sizes) - min(sizes) <= 1
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))


def both(fn):
    """``fn()`` on one worker and on two (twice: the same numbers each time)."""
    with threads.using(1):
        one = fn()
    with threads.using(2):
        two, again = fn(), fn()
    for a, b in zip(_flat(two), _flat(again)):
        np.testing.assert_array_equal(a, b)
    return one, two


def _flat(obj):
    if isinstance(obj, (tuple, list)):
        return [a for item in obj for a in _flat(item)]
    return [] if obj is None else [np.asarray(obj)]


def assert_close(one, two):
    for a, b in zip(_flat(one), _flat(two), strict=True):
        assert_f32_close(a, b)


# (C_in, H, W, C_out, f, stride, padding, groups): each engine at least once
CONVS = {
    "im2col": (1, 28, 28, 6, 5, 1, 2, 1),
    "batch-last": (16, 10, 10, 24, 3, 1, 1, 1),
    "flat": (16, 32, 32, 16, 3, 1, 1, 1),
    "pointwise": (16, 14, 14, 32, 1, 2, 0, 1),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_conv_forward_and_backward_on_two_workers(engine):
    c_in, h, w_, c_out, f, s, p, groups = CONVS[engine]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, c_in, h, w_), np.float32)
    w = rng.standard_normal((c_out, c_in // groups, f, f), np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    dy = rng.standard_normal(conv2d(x, w, stride=s, padding=p, groups=groups).shape).astype(np.float32)

    def run():
        y, cache = conv2d_forward(x, w, b, stride=s, padding=p, groups=groups)
        assert cache.engine == engine
        return y, conv2d_backward(dy, cache), len(cache.slices)

    (y1, grads1, k1), (y2, grads2, k2) = both(run)
    assert (k1, k2) == (1, 2)
    # per image the same products, but OpenBLAS may block a product of fewer columns otherwise
    dx1, dw1, db1 = grads1
    dx2, dw2, db2 = grads2
    assert_f32_close(y1, y2)
    assert_f32_close(dx1, dx2)
    np.testing.assert_array_equal(db1, db2)
    assert_f32_close(dw1, dw2)  # partial sums, added


@pytest.mark.parametrize("f,stride,mode", [(2, 2, "max"), (3, 1, "max"), (3, 2, "avg")])
def test_pooling_on_two_workers_is_exact(f, stride, mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 16, 28, 28), np.float32)

    def run():
        y, cache = pool2d_forward(x, f, stride=stride, padding=f // 2 if f == 3 else 0, mode=mode)
        return y, pool2d_backward(np.cos(y), cache)

    one, two = both(run)
    for a, b in zip(_flat(one), _flat(two), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("act", [None, "relu", "relu6"])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_on_two_workers_is_exact(act, train):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 8, 28, 28), np.float32) * 3 + 1
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        bn = L.BatchNorm(8, act=act)
        bn.params["gamma"] = np.linspace(0.5, 2, 8, dtype=np.float32)
        y = bn.forward(x, train, keep=True)  # an evaluation backward too
        return y, bn.backward(dy), bn.grads["gamma"], bn.grads["beta"], bn.buffers["mean"], bn.buffers["var"]

    one, two = both(run)
    for a, b in zip(_flat(one), _flat(two), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", L.ACTIVATIONS)
def test_activations_on_two_workers_are_exact(name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 8, 28, 28), np.float32) * 4

    def run():
        layer = L.Activation(name)
        y = layer.forward(x, True)
        return y, layer.backward(np.ones_like(y))

    one, two = both(run)
    for a, b in zip(_flat(one), _flat(two), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", [*DIGIT_NETWORKS, "lenet5"])
def test_a_training_step_and_an_evaluation_on_two_workers(name):
    report = analyse(get(name))
    h, w, c = report.input_shape
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, c, h, w)).astype(np.float32)
    labels = rng.integers(0, 10, 32)

    def run():
        model = build_model(report, seed=0)
        loss, dlogits = softmax_cross_entropy(model.forward(x), labels)
        dx = model.backward(dlogits)
        model.eval()  # the running statistics the step left
        return loss, dx, [layer.grads[key] for _, layer, key in model.parameters()], model.forward(x)

    one, two = both(run)
    assert_close(one, two)
