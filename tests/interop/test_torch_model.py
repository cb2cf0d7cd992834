"""The live PyTorch module of a convcli model (`convcli.interop.torch_model`) and the optimiser
`--backend torch` trains it with (`convcli.training.torch_loop`), against convcli's own numpy
forward, backward and optimisers: the module is the report's network layer for layer (shapes,
parameter counts, logits); the same weights in give the same loss on a first training batch,
the same gradients and batch norm statistics, and the same weights after two steps of each
optimiser."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.networks.zoo import DIGIT_NETWORKS, get
from convcli.nn import layers as L
from convcli.nn.loss import softmax_cross_entropy
from convcli.nn.model import build_model, trainable_layers
from convcli.nn.optim import make_optimizer
from convcli.training.datasets import resolve_data
from convcli.training.loop import prepare_images

torch = pytest.importorskip("torch")

from convcli.interop.torch_model import build_torch_model, named_parameters, store_weights  # noqa: E402
from convcli.training.torch_loop import load_optimizer_state, store_optimizer_state, torch_optimizer  # noqa: E402

BATCH = 32


def first_batch(network):
    """The first 32 training images as `convcli train` prepares them: the built-in digits for an
    8x8 network; for a 28x28 one, the digits enlarged to 28x28 (MNIST's size, without MNIST)."""
    splits = resolve_data("digits", validation=0.1, seed=0)
    images, labels = splits.train.images[:BATCH], splits.train.labels[:BATCH]
    if network.input[:2] == (28, 28):
        images = np.pad(np.kron(images, np.ones((1, 1, 3, 3), np.float32)), ((0, 0), (0, 0), (2, 2), (2, 2)))
    return prepare_images(images, network.input, float(images.mean()), float(images.std())), labels


def without_dropout(model, net):
    """Dropout draws its masks from different generators in numpy and PyTorch: switched off in
    both, so that a training-mode batch compares exactly."""
    for _, layer in model.named_layers():
        if isinstance(layer, L.Dropout):
            layer.rate = 0.0
    for module in net.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


@pytest.mark.parametrize("name", DIGIT_NETWORKS)
def test_first_batch_loss_gradients_and_statistics_match_numpy(name):
    network = get(name)
    model = build_model(analyse(network), seed=3)
    net = build_torch_model(model)
    without_dropout(model, net)
    x, y = first_batch(network)

    model.train()
    loss, dlogits = softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    torch_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)))
    torch_loss.backward()

    assert torch_loss.item() == pytest.approx(loss, rel=1e-5)
    grads = {f"{path}{key}": layer.grads[key] for path, layer in model.named_layers() for key in layer.params}
    # float32 sums in another order: to within 0.1% of the largest gradient of the network
    scale = max(float(np.abs(g).max()) for g in grads.values())
    for key, p in named_parameters(net):
        np.testing.assert_allclose(p.grad.numpy(), grads[key], rtol=1e-3, atol=1e-3 * scale, err_msg=key)
    numpy_state = model.state_dict()  # the running statistics one batch has moved
    store_weights(net, model)
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, numpy_state[key], rtol=1e-5, atol=1e-6, err_msg=key)


def paths(infos, prefix=""):
    """``(path, report entry)`` for every layer, blocks before their inner layers, in the spec's
    order (the model may run a ReLU after the max pooling it precedes; the module does not)."""
    for i, info in enumerate(infos):
        yield f"{prefix}{i}", info
        for name, branch in info.children:  # the report's "branch 1" is the model's "branch1"
            yield from paths(branch, f"{prefix}{i}.{name.replace(' ', '')}.")


@pytest.mark.parametrize("name", ("lenet5", *DIGIT_NETWORKS))
def test_the_module_is_the_report_layer_for_layer(name):
    """Every layer of the report, blocks and the layers inside them, against the module: the
    parameters and statistics under the layer's convcli path (``"3.body.0."``) have convcli's
    shapes and the report's counts; the submodule named after the path (``conv_3_body_0``; a block
    is one only through its own activation) gives the report's output shape; and with convcli's
    weights, and batch norm statistics one batch has moved, the logits are convcli's."""
    report = analyse(get(name))
    model = build_model(report, seed=0)
    h, w, c = report.network.input
    x = np.random.default_rng(0).standard_normal((4, c, h, w), dtype=np.float32)
    model.train()
    model.forward(x)
    net = build_torch_model(model).eval()
    ours, theirs = model.state_dict(), net.state_dict()
    trained = {key for key, _, _ in model.parameters()}
    assert set(net.convcli_names) == set(ours)
    assert {k for k in theirs if not k.endswith("num_batches_tracked")} == set(net.convcli_names.values())
    modules = {attr.split("_", 1)[1]: module for attr, module in net.named_children()}
    shapes: dict[str, tuple] = {}

    def keep(path):
        def hook(module, inputs, output):
            shapes[path] = tuple(output.shape)

        return hook

    for path, module in modules.items():
        module.register_forward_hook(keep(path))
    model.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()

    for path, info in paths(trainable_layers(report)):
        keys = [k for k in ours if k.startswith(f"{path}.")]
        for key in keys:
            assert tuple(theirs[net.convcli_names[key]].shape) == ours[key].shape, key
        counts = [sum(ours[k].size for k in keys if (k in trained) == t) for t in (True, False)]
        assert counts == [info.params, info.buffers], info.word
        key = path.replace(".", "_")
        assert key in modules or info.children, f"no module for layer {path} '{info.word}'"
        if key in modules:
            out = info.out_shape
            assert shapes[key] == ((4, out[2], out[0], out[1]) if len(out) == 3 else (4, *out)), (path, info.word)
    assert sum(p.numel() for p in net.parameters()) == report.total("params")
    np.testing.assert_allclose(logits, model.forward(x), rtol=1e-4, atol=1e-4)


def test_a_report_gives_the_weights_train_starts_from():
    report = analyse(get("mnist-resnet"))
    model = build_model(report, seed=7)
    net = build_torch_model(report, seed=7)
    state = net.state_dict()
    for key, name in net.convcli_names.items():
        np.testing.assert_array_equal(state[name].numpy(), model.state_dict()[key], err_msg=key)


@pytest.mark.parametrize(
    "optimizer, weight_decay", [("sgd", 1e-2), ("momentum", 5e-4), ("nesterov", 0.0), ("adam", 1e-2)]
)
def test_two_steps_of_each_optimizer_match_numpy(optimizer, weight_decay):
    """The settings come from convcli's optimiser (momentum 0.9, Adam's betas and eps), weight
    decay on the weights only; two steps, so that momentum and Adam's moments carry over."""
    words = "8x8x1 conv:8,f=3,p=same,bias=0 bn relu maxpool:2 flatten fc:10".split()
    model = build_model(analyse(parse_words(words)), seed=1)
    numpy_optimizer = make_optimizer(optimizer, model, 0.05, weight_decay)
    net = build_torch_model(model)
    net_optimizer = torch_optimizer(numpy_optimizer, net)
    x, y = first_batch(model.report.network)
    for step in range(2):
        half = slice(16 * step, 16 * step + 16)
        _, dlogits = softmax_cross_entropy(model.forward(x[half]), y[half])
        model.backward(dlogits)
        numpy_optimizer.step()
        net_optimizer.zero_grad()
        logits = net(torch.from_numpy(x[half]))
        torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[half].astype(np.int64))).backward()
        net_optimizer.step()
    state = net.state_dict()
    for key, name in net.convcli_names.items():
        np.testing.assert_allclose(state[name].numpy(), model.state_dict()[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_optimizer_state_goes_both_ways(optimizer):
    """What a checkpoint keeps for --resume, named as convcli's optimisers name it."""
    model = build_model(analyse(parse_words("8x8x1 conv:4,f=3 bn relu flatten fc:10".split())), seed=0)
    numpy_optimizer = make_optimizer(optimizer, model, 0.01)
    net = build_torch_model(model)
    first = torch_optimizer(numpy_optimizer, net)
    x, y = first_batch(model.report.network)
    torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64))).backward()
    first.step()
    numpy_optimizer.steps = 1
    store_optimizer_state(first, numpy_optimizer, net)
    names = [name for name, _, _ in model.parameters()]
    moments = {f"{name}.{m}" for name in names for m in "mv"}
    assert set(numpy_optimizer.state) == (moments if optimizer == "adam" else set(names))
    second = torch_optimizer(numpy_optimizer, net)
    load_optimizer_state(second, numpy_optimizer, net)
    for p in net.parameters():
        for key, value in first.state[p].items():
            assert torch.equal(second.state[p][key], value), key
