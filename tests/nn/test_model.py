"""Models built from specs: containers' gradients, training a tiny net, seeds, errors, state."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import TrainingError
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.networks.zoo import get
from convcli.nn.loss import softmax, softmax_cross_entropy
from convcli.nn.model import build_model
from convcli.nn.optim import make_optimizer

from gradcheck import numeric_grad


def model_of(words: str, seed: int = 0):
    return build_model(analyse(parse_words(words.split())), seed=seed)


def check_model_gradients(model, x, labels, rng):
    """Every parameter's and the input's gradient against central differences, in float64."""
    for _, layer, key in model.parameters():
        layer.params[key] = layer.params[key].astype(np.float64)
    x = x.astype(np.float64)

    def loss():
        return softmax_cross_entropy(model.forward(x), labels)[0]

    _, dlogits = softmax_cross_entropy(model.forward(x), labels)
    dx = model.backward(dlogits)
    checks = [("x", x, dx)] + [(name, layer.params[key], layer.grads[key]) for name, layer, key in model.parameters()]
    for name, value, grad in checks:
        idx, num = numeric_grad(loss, value, samples=8, rng=rng)
        np.testing.assert_allclose(grad.reshape(-1)[idx], num, rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    "words",
    [
        "8x8x2 conv:4,f=3,p=1 relu maxpool:2 flatten fc:3",
        "8x8x3 conv:4,f=3,p=1,bias=0 bn relu res:4 res:6,s=2 gap flatten fc:3",
        "8x8x4 inception:2,2-3,1-2,2,bn=1 avgpool:2 flatten fc:3",
        "8x8x4 conv:8,f=1 bn relu6 invres:8,t=2 invres:6,s=2 dwsep:5 gmp flatten fc:3",
        "8x8x2 conv:4,f=3,d=2,p=same tanh dwconv:f=3,m=2 sigmoid adaptivepool:2 flatten fc:5 leakyrelu fc:3",
    ],
)
def test_model_gradients(words):
    rng = np.random.default_rng(3)
    model = model_of(words)
    c = model.report.input_shape[2]
    check_model_gradients(model, rng.standard_normal((4, c, 8, 8)), np.array([0, 1, 2, 1]), rng)


def test_tiny_net_overfits_a_batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    model = model_of("8x8x1 conv:8,f=3,p=same relu maxpool:2 flatten fc:4")
    opt = make_optimizer("adam", model, 0.01)
    first = None
    for _ in range(150):
        loss, d = softmax_cross_entropy(model.forward(x), y)
        first = first if first is not None else loss
        model.backward(d)
        opt.step()
    assert first > 1.0 and loss < 0.05


def test_seed_gives_identical_weights():
    words = "8x8x1 conv:4,f=3 bn relu flatten dropout fc:10"
    a, b, c = (model_of(words, s).state_dict() for s in (5, 5, 6))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.w"], c["0.w"])
    assert all(v.dtype == np.float32 for v in a.values())


def test_he_for_relu_nets_glorot_otherwise():
    relu = model_of("32x32x1 conv:64,f=5 relu flatten fc:10").state_dict()["0.w"]
    tanh = model_of("32x32x1 conv:64,f=5 tanh flatten fc:10").state_dict()["0.w"]
    assert relu.std() == pytest.approx(np.sqrt(2 / 25), rel=0.05)
    assert np.abs(tanh).max() <= np.sqrt(6 / (25 + 64 * 25))


def test_lenet5_matches_the_published_parameter_count():
    model = build_model(analyse(get("lenet5")))
    assert model.n_params() == 61706 == analyse(get("lenet5")).total("params")
    assert model.forward(np.zeros((2, 1, 32, 32), np.float32)).shape == (2, 10)


def test_parameter_count_matches_params_for_blocks():
    report = analyse(
        parse_words(
            "16x16x3 conv:8,f=3,p=1,bias=0 bn relu res:8 res:16,s=2 "
            "inception:4,4-8,2-4,4 invres:8,s=2 dwsep:8 gap flatten fc:10".split()
        )
    )
    assert build_model(report).n_params() == report.total("params")


@pytest.mark.parametrize(
    "words, named",
    [
        ("32x32x1 conv:6,f=5 subsample:2 flatten fc:10", "subsample"),
        ("32x32x1 conv:6,f=5 scaledtanh flatten fc:10", "scaledtanh"),
        ("14x14x6 conv:16,f=5,table=lenet5 flatten fc:10", "table=lenet5"),
        ("8x8x1 convT:4 flatten fc:10", "convT"),
        ("8x8x1 conv:4 flatten rbf:10", "rbf"),
        ("8x8x1 conv:4 gelu flatten fc:10", "gelu"),
        ("8x8x1 conv:4 softmax flatten fc:10", "softmax"),
        ("7x7x1 conv:4 adaptivepool:2 flatten fc:10", "adaptivepool"),
        ("8x8x1 conv:4", "must end in class scores"),
    ],
)
def test_untrainable_layers_are_named(words, named):
    with pytest.raises(TrainingError, match=named):
        model_of(words)


def test_lenet5_1998_is_refused_by_name():
    with pytest.raises(TrainingError, match="subsample"):
        build_model(analyse(get("lenet5-1998")))


@pytest.mark.parametrize("pool", ["maxpool:2", "maxpool:3,s=2,p=1", "maxpool:2,ceil=1"])
def test_relu_then_max_pool_runs_pooled_first_with_the_same_values_and_gradients(pool):
    from convcli.nn.model import Sequential

    model = model_of(f"7x7x2 conv:3,f=1 relu {pool} flatten fc:3")
    conv, first, second = model.root.layers[:3]
    assert (first.mode, second.name) == ("max", "relu")  # pooled first
    in_spec_order = Sequential([conv, second, first] + model.root.layers[3:])
    rng = np.random.default_rng(5)
    # whole windows below zero, ties between equal maxima, and a flat zero border
    x = np.round(rng.standard_normal((6, 2, 7, 7)), 1).astype(np.float32)
    x[:2, :, :3] = -1.0
    x[2:4, :, :, :3] = 0.0
    labels = np.array([0, 1, 2, 0, 1, 2])
    results = []
    for net in (model.root, in_spec_order):
        logits = net.forward(x, True)
        dx = net.backward(softmax_cross_entropy(logits, labels)[1])
        results.append([logits, dx] + [layer.grads[k].copy() for _, layer, k in model.parameters()])
    for ours, expected in zip(*results):
        np.testing.assert_array_equal(ours, expected)


def test_final_softmax_is_folded_into_the_loss():
    model = model_of("8x8x1 conv:4 flatten fc:3 softmax")
    p = model.probabilities(np.ones((2, 1, 8, 8), np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)


def test_state_dict_round_trip_and_mismatch():
    a, b = model_of("8x8x1 conv:4 bn relu flatten fc:3", 1), model_of("8x8x1 conv:4 bn relu flatten fc:3", 2)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert "1.mean" in a.state_dict()
    with pytest.raises(TrainingError, match="do not fit"):
        model_of("8x8x1 conv:5 flatten fc:3").load_state_dict(a.state_dict())


def test_forward_matches_torch():
    torch = pytest.importorskip("torch")
    model = model_of("8x8x2 conv:4,f=3,p=1 bn relu maxpool:2 conv:6,f=3,s=2,p=1,g=2 relu6 flatten fc:3")
    s = model.state_dict()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
        torch.nn.ReLU6(),
        torch.nn.Flatten(),
        torch.nn.Linear(24, 3),
    )
    with torch.no_grad():
        for i, (w, b) in {0: ("0.w", "0.b"), 4: ("4.w", "4.b"), 7: ("7.w", "7.b")}.items():
            net[i].weight.copy_(torch.from_numpy(s[w]))
            net[i].bias.copy_(torch.from_numpy(s[b]))
    x = np.random.default_rng(0).standard_normal((5, 2, 8, 8)).astype(np.float32)
    for train in (True, False):
        model.train() if train else model.eval()
        net.train(train)
        np.testing.assert_allclose(model.forward(x), net(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("name", ["digits-cnn", "mnist-cnn", "mnist-resnet", "mnist-mobilenet", "mnist-inception"])
def test_trainable_architectures_build_and_step(name):
    from convcli.training.recipes import TRAINABLE

    report = analyse(parse_words(TRAINABLE[name].split()))
    model = build_model(report)
    assert model.n_params() == report.total("params")
    h, w, c = report.input_shape
    x = np.random.default_rng(0).standard_normal((2, c, h, w)).astype(np.float32)
    loss, d = softmax_cross_entropy(model.forward(x), np.array([3, 7]))
    assert model.backward(d).shape == x.shape and np.isfinite(loss)


def test_probabilities_are_the_softmax_the_loss_trains():
    """One softmax: what predict reports is what the loss's gradient is made of."""
    model = model_of("6x6x1 conv:3,f=3 relu flatten fc:4")
    x = np.random.default_rng(2).standard_normal((5, 1, 6, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0])
    probs = model.probabilities(x)
    _, grad = softmax_cross_entropy(model.forward(x), y)
    np.testing.assert_allclose(grad * len(y) + np.eye(4)[y], probs, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(model.forward(x)), 1).numpy(), atol=1e-6)


def test_softmax_of_far_apart_logits():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = softmax(np.array([[0.0, 1e4, -1e4]], np.float32))
    assert p.tolist() == [[0.0, 1.0, 0.0]] and p.dtype == np.float32
