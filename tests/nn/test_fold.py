"""Batch norm folded into the convolution before it (`convcli.nn.fold`): the folded model's
logits are the unfolded model's in evaluation mode, for every digit network with batch norm
statistics that are far from the identity."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import TrainingError
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.networks.zoo import DIGIT_NETWORKS, get
from convcli.nn import layers as L
from convcli.nn.fold import Folded, fold_batch_norm
from convcli.nn.model import build_model

NETWORKS = (*DIGIT_NETWORKS, "lenet5")


def randomised(report, seed: int = 0, fuse: bool = True):
    """A model whose batch norms have random statistics, scales and shifts, and whose
    convolutions have random biases."""
    model = build_model(report, seed=seed, fuse=fuse)
    rng = np.random.default_rng(seed + 1)
    for _, layer in model.named_layers():
        if isinstance(layer, L.BatchNorm):
            c = len(layer.buffers["mean"])
            layer.buffers["mean"] = rng.normal(0, 0.5, c).astype(np.float32)
            layer.buffers["var"] = rng.uniform(0.2, 3, c).astype(np.float32)
            layer.params["gamma"] = rng.uniform(0.5, 2, c).astype(np.float32)
            layer.params["beta"] = rng.normal(0, 0.5, c).astype(np.float32)
        if isinstance(layer, L.Conv2d) and "b" in layer.params:
            layer.params["b"] = rng.normal(0, 0.1, layer.params["b"].shape).astype(np.float32)
    model.eval()
    return model


def images(report, n: int = 6) -> np.ndarray:
    h, w, c = report.network.input
    return np.random.default_rng(2).standard_normal((n, c, h, w)).astype(np.float32)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("fuse", [True, False])
def test_folded_logits_are_the_evaluation_logits(name, fuse):
    report = analyse(get(name))
    model = randomised(report, fuse=fuse)
    before = {key: value.copy() for key, value in model.state_dict().items()}
    x = images(report)
    folded = fold_batch_norm(model)
    expected = model.forward(x)
    # the forward that keeps nothing (sums and ReLUs in place) computes what the keeping one does
    np.testing.assert_allclose(model.forward(x, keep=True), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(folded.forward(x), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    for key, value in model.state_dict().items():  # the model folded is left as it was
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    batch_norms = sum(isinstance(layer, L.BatchNorm) for _, layer in model.named_layers())
    left = sum(isinstance(layer, L.BatchNorm) for _, layer in folded.named_layers())
    assert sum(isinstance(layer, Folded) for _, layer in folded.named_layers()) == batch_norms - left
    if batch_norms:
        assert left < batch_norms


def test_a_batch_norm_not_after_a_convolution_stays():
    report = analyse(parse_words("8x8x2 bn conv:4,f=3 bn relu6 flatten fc:16 bn relu fc:3".split()))
    model = randomised(report)
    folded = fold_batch_norm(model)
    kinds = [type(layer).__name__ for layer in folded.root.layers]
    assert kinds == [
        "BatchNorm",
        "Conv2d",
        "Folded",
        "Activation",
        "Flatten",
        "Linear",
        "BatchNorm",
        "Activation",
        "Linear",
    ]
    assert folded.root.layers[1].act == "relu6"
    x = images(report)
    np.testing.assert_allclose(folded.forward(x), model.forward(x), rtol=1e-4, atol=1e-5)


def test_the_folded_model_is_for_inference_only():
    report = analyse(get("mnist-resnet"))
    folded = fold_batch_norm(randomised(report))
    with pytest.raises(TrainingError, match="cannot be trained"):
        folded.train()
    with pytest.raises(RuntimeError):
        folded.forward(images(report, 1), keep=True)
        folded.backward(np.ones((1, 10), np.float32))
