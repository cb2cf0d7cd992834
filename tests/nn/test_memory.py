"""The memory estimate against what the layers really keep: every digit network runs a forward,
and each layer's cache is weighed, array by array (each distinct buffer once, the layer's own
weights left out), against `convcli.nn.memory.estimate`'s number for that layer. A change to a
cache (a new engine, a mask kept in another dtype) that the estimate does not follow fails here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convcli.networks.load import load_network
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.networks.zoo import DIGIT_NETWORKS
from convcli.nn import model as M
from convcli.nn.memory import estimate
from convcli.nn.model import build_model

NETWORKS = (*DIGIT_NETWORKS, "lenet5")


def _base(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def cache_buffers(layer, own_weights: set[int]) -> dict[int, int]:
    """id -> nbytes of every distinct buffer the layer's cache holds (a residual block's
    activation included), its weights left out."""
    found: dict[int, int] = {}

    def visit(obj) -> None:
        if isinstance(obj, np.ndarray):
            base = _base(obj)
            if id(base) not in own_weights:
                found[id(base)] = base.nbytes
        elif isinstance(obj, (tuple, list)):
            for item in obj:
                visit(item)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                visit(getattr(obj, f.name))

    visit(layer._cache)
    if isinstance(layer, M.Residual) and layer.act is not None:
        visit(layer.act._cache)
    return found


def layers_by_path(seq: M.Sequential, prefix: str = "") -> dict[str, object]:
    found = {}
    for i, layer in enumerate(seq.layers):
        found[f"{prefix}{i}"] = layer
        for name, child in layer.children() if hasattr(layer, "children") else ():
            found.update(layers_by_path(child, f"{prefix}{i}.{name}."))
    return found


def weigh(report, train: bool, n: int = 2):
    """The estimate at batch ``n`` and, per model path, the bytes each cache really holds after
    a forward (training mode or evaluation)."""
    model = build_model(report, seed=0)
    model.training = train
    x = np.random.default_rng(0).standard_normal((n, *report.input_shape[2:], *report.input_shape[:2]), np.float32)
    model.forward(x)
    # after the forward, which replaces batch norm's running statistics
    weights = {
        id(_base(a)) for _, layer in model.named_layers() for a in (*layer.params.values(), *layer.buffers.values())
    }
    return {path: cache_buffers(layer, weights) for path, layer in layers_by_path(model.root).items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_each_layer_keeps_what_the_estimate_says(name):
    report = analyse(load_network([name], None))
    real = weigh(report, train=True)
    memory = estimate(report, 2)
    assert memory.exact
    assert {row.path for row in memory.layers} == set(real)
    for row in memory.layers:
        assert sum(real[row.path].values()) == row.cached, (row.path, row.word)
    held: dict[int, int] = {}
    for buffers in real.values():
        held.update(buffers)
    assert sum(held.values()) == memory.kept == sum(row.kept for row in memory.layers if not row.depth)


@pytest.mark.parametrize("name", NETWORKS)
def test_an_evaluation_forward_keeps_nothing(name):
    """Evaluation keeps no cache (no columns, masks or argmax), as the inference peak counts it:
    the weights and one layer's arrays at a time."""
    report = analyse(load_network([name], None))
    real = weigh(report, train=False)
    assert {path: sum(buffers.values()) for path, buffers in real.items()} == dict.fromkeys(real, 0)
    memory = estimate(report, 2)
    assert memory.inference_peak == memory.weights + memory.transient_eval < memory.training_peak


@pytest.mark.parametrize("name", ["mnist-resnet", "mnist-mobilenet", "mnist-inception"])
def test_an_evaluation_forward_asked_to_keep_keeps_a_training_forward_s_caches(name):
    """Grad-CAM's forward (evaluation mode, ``keep=True``) keeps what training keeps, in networks
    without dropout (whose mask and output only training makes)."""
    report = analyse(load_network([name], None))
    model = build_model(report, seed=0)
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, *report.input_shape[2:], *report.input_shape[:2]), np.float32)
    model.forward(x, keep=True)
    weights = {
        id(_base(a)) for _, layer in model.named_layers() for a in (*layer.params.values(), *layer.buffers.values())
    }
    held: dict[int, int] = {}
    for layer in layers_by_path(model.root).values():
        held.update(cache_buffers(layer, weights))
    assert sum(held.values()) == estimate(report, 2).kept


@pytest.mark.parametrize(
    "words",
    [
        "16x16x3 conv:8,f=3,p=1 avgpool:3,s=2,p=1,count_pad=0 sigmoid flatten fc:4",
        "9x9x2 conv:4,f=3,s=2 maxpool:2,ceil=1 swish gmp flatten fc:3",
        "12x12x16 conv:16,f=1 relu conv:16,f=3 adaptivepool:2 flatten dropout:0.5 fc:2",
        "8x8x4 dwconv:f=3,m=2 tanh res:8 gap flatten fc:2",
    ],
)
def test_other_layers_keep_what_the_estimate_says(words):
    """Padding not counted, ceil mode, the flat engine without padding (which keeps the input
    itself), global max pooling's argmax, the other activations."""
    report = analyse(parse_words(words.split()))
    real = weigh(report, train=True, n=3)
    memory = estimate(report, 3)
    for row in memory.layers:
        assert sum(real[row.path].values()) == row.cached, (row.path, row.word)
    held: dict[int, int] = {}
    for buffers in real.values():
        held.update(buffers)
    assert sum(held.values()) == memory.kept


def test_the_peaks_add_up():
    """The fc network of `estimate`'s example, by hand: 170 weights, the 2x16 batch kept by fc."""
    m = estimate(analyse(parse_words("4x4x1 flatten fc:10".split())), 2, "adam")
    assert (m.weights, m.grads, m.state, m.kept) == (680, 680, 1360, 128)
    assert m.training_peak == 680 + 680 + 1360 + 128 + m.transient
    # evaluation keeps nothing: the batch, alive while fc makes its 2x10 output
    assert m.transient_eval == 128 + 80 and m.inference_peak == 680 + 128 + 80


def test_state_follows_the_optimiser():
    report = analyse(load_network(["lenet5"], None))
    states = {name: estimate(report, 1, name).state for name in ("sgd", "momentum", "adam")}
    params = report.total("params") * 4
    assert states == {"sgd": 0, "momentum": params, "adam": 2 * params}
