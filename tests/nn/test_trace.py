"""What `Model.traced` records (every layer's output and the gradient arriving at it), how
`Model.walk` pairs layers with the report's entries, and models built in the spec's order."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.networks.report import analyse, walk
from convcli.networks.words import parse_words
from convcli.networks.zoo import get
from convcli.nn import layers as L
from convcli.nn.model import build_model, trainable_layers

NETS = {
    "plain": "10x10x1 conv:4,f=3,p=1 relu maxpool:2 conv:6,f=3 bn relu flatten fc:3",
    "resnet": "8x8x2 conv:4,f=3,p=1 bn relu res:4 res:8,s=2 gap flatten fc:3",
    "inception": "8x8x1 conv:4,f=3,p=1 relu inception:2,2-4,2-2,2,bn=1 gap flatten fc:3",
}


def model_of(words: str, fuse: bool = True):
    model = build_model(analyse(parse_words(words.split())), seed=3, fuse=fuse)
    rng = np.random.default_rng(1)
    for _, layer in model.named_layers():  # batch norm statistics that are not the identity
        if isinstance(layer, L.BatchNorm):
            layer.buffers["mean"] = rng.normal(0, 0.3, layer.buffers["mean"].shape).astype(np.float32)
            layer.buffers["var"] = rng.uniform(0.5, 2, layer.buffers["var"].shape).astype(np.float32)
            layer.params["beta"] = rng.normal(0, 0.3, layer.params["beta"].shape).astype(np.float32)
    model.eval()
    return model


def image(words: str, n: int = 2) -> np.ndarray:
    h, w, c = parse_words(words.split()).input
    return np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32)


def test_spec_order_model_computes_what_the_fused_one_does():
    fused, ordered = model_of(NETS["plain"]), model_of(NETS["plain"], fuse=False)
    assert [type(layer).__name__ for layer in fused.root.layers[1:3]] == ["Pool2d", "Activation"]
    assert [type(layer).__name__ for layer in ordered.root.layers[1:3]] == ["Activation", "Pool2d"]
    assert fused.state_dict().keys() == ordered.state_dict().keys()  # a checkpoint loads into both
    ordered.load_state_dict(fused.state_dict())
    x = image(NETS["plain"])
    np.testing.assert_array_equal(fused.forward(x), ordered.forward(x))


@pytest.mark.parametrize("fuse", [True, False])
def test_walk_pairs_each_layer_with_its_report_entry(fuse):
    model = model_of(NETS["plain"], fuse)
    for _, info, layer in model.walk():
        assert {"conv": L.Conv2d, "relu": L.Activation, "maxpool": L.Pool2d}.get(info.kind, type(layer)) is type(layer)
    if not fuse:
        assert [info for _, info, _ in model.walk()] == list(walk(trainable_layers(model.report)))


@pytest.mark.parametrize("name", ["resnet", "inception"])
def test_walk_goes_inside_blocks_with_the_parameter_names(name):
    model = model_of(NETS[name], fuse=False)
    rows = list(model.walk())
    assert [info for _, info, _ in rows] == list(walk(trainable_layers(model.report)))
    convs = {path for path, info, _ in rows if info.kind == "conv"}
    conv_weights = {name for name, layer, key in model.parameters() if key == "w" and isinstance(layer, L.Conv2d)}
    assert {f"{path}.w" for path in convs} == conv_weights
    assert {"resnet": {"3.body.0", "4.shortcut.0"}, "inception": {"2.branch2.3", "2.branch4.1"}}[name] <= convs


def test_every_zoo_digit_network_walks_in_spec_order():
    for name in ("digits-cnn", "mnist-cnn", "mnist-resnet", "mnist-mobilenet", "mnist-inception", "lenet5"):
        model = build_model(analyse(get(name)), fuse=False)
        assert [info for _, info, _ in model.walk()] == list(walk(trainable_layers(model.report)))


@pytest.mark.parametrize("name", list(NETS))
def test_trace_keeps_each_output_and_the_gradient_arriving_at_it(name):
    model = model_of(NETS[name], fuse=False)
    x = image(NETS[name])
    dlogits = np.random.default_rng(2).standard_normal((len(x), 3)).astype(np.float32)
    with model.traced() as trace:
        logits = model.forward(x, keep=True)  # as Grad-CAM runs it: evaluation mode, then a backward
        model.backward(dlogits)
    top = model.root.layers
    np.testing.assert_array_equal(trace.outputs[top[-1]], logits)
    np.testing.assert_array_equal(trace.grads[top[-1]], dlogits)
    y = x
    for layer in top:  # each output is the layer applied to the one before
        y = layer.forward(y, False)
        np.testing.assert_allclose(trace.outputs[layer], y, rtol=1e-6, atol=1e-6)
    # the gradient arriving at a layer's output, summed over positions, is its bias's gradient
    # (which the gradient checks of tests/nn/test_model.py compare with central differences)
    checked = 0
    for _, _, layer in model.walk():
        bias = "b" if "b" in layer.params else "beta" if "beta" in layer.params else None
        if bias and layer in trace.grads and trace.grads[layer].ndim == 4:
            np.testing.assert_allclose(trace.grads[layer].sum(axis=(0, 2, 3)), layer.grads[bias], rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked >= 2
    assert all(len(trace.outputs[layer]) == len(x) for _, _, layer in model.walk())


def test_nothing_is_recorded_outside_the_block():
    model = model_of(NETS["resnet"], fuse=False)
    with model.traced() as trace:
        model.forward(image(NETS["resnet"]))
    count = len(trace.outputs)
    model.forward(image(NETS["resnet"]))
    assert len(trace.outputs) == count and count == len(list(model.walk()))


@pytest.mark.parametrize("name", ["mnist-resnet", "mnist-mobilenet", "mnist-inception"])
def test_fused_model_trains_as_the_spec_order_one(name):
    """Batch norm applying its ReLU/ReLU6, and pooling before ReLU: the same outputs and gradients."""
    report = analyse(get(name))
    fused, ordered = build_model(report, seed=1), build_model(report, seed=1, fuse=False)
    assert any(isinstance(layer, L.BatchNorm) and layer.act for _, layer in fused.named_layers())
    h, w, c = report.network.input
    x = np.random.default_rng(0).standard_normal((4, c, h, w))
    dlogits = np.random.default_rng(1).standard_normal((4, 10))
    np.testing.assert_allclose(fused.forward(x), ordered.forward(x), rtol=1e-10, atol=1e-12)
    fused.backward(dlogits), ordered.backward(dlogits)
    for (name_, a, key), (_, b, _) in zip(fused.parameters(), ordered.parameters(), strict=True):
        np.testing.assert_allclose(a.grads[key], b.grads[key], rtol=1e-9, atol=1e-12, err_msg=name_)
