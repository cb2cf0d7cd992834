"""benchmarks/bench_evaluate.py times, against convcli's inference model, the module
`build_torch_model` builds with the checkpoint's weights in evaluation mode: both give the same
logits on the same images (the benchmark's accuracy check relies on it), for every network it runs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from convcli.networks.report import analyse
from convcli.networks.zoo import DIGIT_NETWORKS, get
from convcli.nn import checkpoint as ckpt
from convcli.nn import layers as L
from convcli.nn.checkpoint import DataInfo, Metadata
from convcli.nn.model import build_model
from convcli.training.loop import TrainConfig

from conftest import REPO

torch = pytest.importorskip("torch")

_spec = importlib.util.spec_from_file_location("bench_evaluate", REPO / "benchmarks" / "bench_evaluate.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def saved(name: str, path) -> None:
    """A fresh model of ``name`` with batch norm statistics far from the identity, saved."""
    network = get(name)
    model = build_model(analyse(network), seed=1)
    rng = np.random.default_rng(0)
    for _, layer in model.named_layers():
        if isinstance(layer, L.BatchNorm):
            c = len(layer.buffers["mean"])
            layer.buffers["mean"] = rng.normal(0, 0.5, c).astype(np.float32)
            layer.buffers["var"] = rng.uniform(0.3, 2, c).astype(np.float32)
    info = DataInfo("mnist", tuple("0123456789"), (1, 28, 28), 0.13, 0.31, 0, 0.0, None, None)
    ckpt.save(path, model.state_dict(), {}, Metadata(network, TrainConfig(), info))


@pytest.mark.parametrize("name", bench.NETWORKS)
def test_both_runs_compute_the_same_logits(name, tmp_path):
    assert name == "lenet5" or name in DIGIT_NETWORKS
    path = tmp_path / f"{name}.npz"
    saved(name, path)
    h, w, c = get(name).input
    x = np.random.default_rng(2).standard_normal((12, c, h, w)).astype(np.float32)
    ours, theirs = bench.convcli_run(path, x)(), bench.torch_run(path, x)()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
