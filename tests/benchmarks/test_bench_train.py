"""benchmarks/bench_train.py trains, as its PyTorch reference, the module `build_torch_model` builds
from the network's report (the one ``--backend torch`` trains), with convcli's initial weights for
the seed; tests/interop/test_torch_model.py checks that module against the report layer for layer,
for every network the benchmark runs."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from convcli.networks.zoo import DIGIT_NETWORKS

from conftest import REPO

torch = pytest.importorskip("torch")

from convcli.interop.torch_model import build_torch_model  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_train", REPO / "benchmarks" / "bench_train.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_the_networks_are_those_checked_layer_for_layer():
    assert set(bench.NETWORKS) <= {"lenet5", *DIGIT_NETWORKS}


def test_the_reference_is_the_module_build_torch_model_builds(monkeypatch):
    built = []

    def spy(report, seed=0):
        built.append((report, seed, build_torch_model(report, seed=seed)))
        return built[-1][2]

    def load(data, input_shape, images):  # 8 random images for the benchmark's MNIST
        h, w, c = input_shape
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, c, h, w), dtype=np.float32)
        return x, rng.integers(0, 10, 8), x[:4], rng.integers(0, 10, 4)

    monkeypatch.setattr(bench, "build_torch_model", spy)
    monkeypatch.setattr(bench, "load", load)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the test process keeps its own
    args = SimpleNamespace(net="mnist-cnn", data="mnist", images=8, epochs=1, batch=4, seed=3)
    args.lr, args.schedule, args.weight_decay = 0.01, "cosine", 5e-4
    result = bench.run_torch(args)
    [(report, seed, net)] = built
    assert (report.network, seed) == (bench.report_of("mnist-cnn").network, 3)
    assert len(result["seconds"]) == len(result["accuracy"]) == 1
    assert not net.training  # the benchmark evaluated the module it trained
