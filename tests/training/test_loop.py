"""Optimisers against PyTorch's update rules, schedules, the loop and its metrics."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import TrainingError
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.nn.loss import softmax_cross_entropy
from convcli.nn.model import build_model
from convcli.nn.optim import STATE_COPIES, make_optimizer, scheduled_lr
from convcli.training.loop import (
    TrainConfig,
    evaluate,
    fit,
    precision_recall,
    predict_logits,
    prepare_images,
)

WORDS = "6x6x1 conv:3,f=3 relu flatten fc:4"


def model_of(words=WORDS, seed=0):
    return build_model(analyse(parse_words(words.split())), seed=seed)


@pytest.mark.parametrize("name, wd", [("sgd", 0.0), ("momentum", 0.01), ("nesterov", 0.0), ("adam", 0.05)])
def test_optimizers_match_torch(name, wd):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 6, 6)).astype(np.float32), rng.integers(0, 4, 8)
    model = model_of()
    s = model.state_dict()
    conv, fc = torch.nn.Conv2d(1, 3, 3), torch.nn.Linear(48, 4)
    with torch.no_grad():
        for m, k in ((conv, "0"), (fc, "3")):
            m.weight.copy_(torch.from_numpy(s[f"{k}.w"]))
            m.bias.copy_(torch.from_numpy(s[f"{k}.b"]))
    net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), fc)
    # weight decay on weights only, as convcli applies it
    groups = [
        {"params": [conv.weight, fc.weight], "weight_decay": wd},
        {"params": [conv.bias, fc.bias], "weight_decay": 0.0},
    ]
    if name == "adam":
        topt = torch.optim.Adam(groups, lr=0.01)
    else:
        topt = torch.optim.SGD(groups, lr=0.1, momentum=0.0 if name == "sgd" else 0.9, nesterov=name == "nesterov")
    opt = make_optimizer(name, model, 0.01 if name == "adam" else 0.1, weight_decay=wd)
    for _ in range(4):
        _, d = softmax_cross_entropy(model.forward(x), y)
        model.backward(d)
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
    np.testing.assert_allclose(model.state_dict()["3.w"], fc.weight.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(model.state_dict()["0.b"], conv.bias.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_state_copies_are_what_each_optimiser_keeps(name):
    """The memory estimate's count of optimiser arrays, against the arrays a step leaves."""
    model = model_of()
    optimizer = make_optimizer(name, model, 0.01)
    x, y = np.ones((2, 1, 6, 6), np.float32), np.array([0, 1])
    model.backward(softmax_cross_entropy(model.forward(x), y)[1])
    optimizer.step()
    assert sum(v.size for v in optimizer.state.values()) == STATE_COPIES[name] * model.n_params()


def test_schedules():
    assert scheduled_lr("none", 0.1, 7, 10) == 0.1
    assert scheduled_lr("step", 0.1, 3, 9) == pytest.approx(0.01)
    assert scheduled_lr("cosine", 0.1, 5, 10) == pytest.approx(0.05)
    with pytest.raises(TrainingError, match="schedule"):
        scheduled_lr("linear", 0.1, 0, 1)


def test_fit_learns_and_is_reproducible():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 64)
    x = rng.standard_normal((64, 1, 6, 6)).astype(np.float32) * 0.3
    x[np.arange(64), 0, y, y] += 3  # class k has a bright pixel at (k, k)
    runs = []
    for _ in range(2):
        model = model_of()
        cfg = TrainConfig(epochs=6, batch_size=16, optimizer="adam", lr=0.02, seed=4)
        records = fit(model, make_optimizer("adam", model, 0.02), x, y, cfg, validation=(x, y))
        runs.append((records, model.state_dict()))
    assert runs[0][0][-1].train_loss < runs[0][0][0].train_loss
    assert runs[0][0][-1].val_accuracy == 1.0
    assert all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_nan_loss_suggests_lower_lr():
    x = np.full((4, 1, 6, 6), 1e15, np.float32)
    model = model_of()
    cfg = TrainConfig(epochs=5, batch_size=2, optimizer="sgd", lr=10.0)
    with np.errstate(all="ignore"), pytest.raises(TrainingError, match="lower learning rate, e.g. --lr 1"):
        fit(model, make_optimizer("sgd", model, 10.0), x, np.arange(4) % 2, cfg)


def test_evaluation_metrics():
    model = model_of()
    x = np.random.default_rng(0).standard_normal((30, 1, 6, 6)).astype(np.float32)
    y = np.arange(30) % 4
    ev = evaluate(model, x, y, 4)
    predicted = model.forward(x).argmax(axis=1)
    assert ev.accuracy == pytest.approx((predicted == y).mean())
    assert ev.confusion.sum() == 30 and np.trace(ev.confusion) == (predicted == y).sum()
    p, r = precision_recall(np.array([[3, 1], [0, 0]]))
    assert p.tolist() == [1.0, 0.0] and r[0] == 0.75 and np.isnan(r[1])


def test_prepare_images_pads_28_to_32_and_refuses_other_sizes():
    imgs = np.ones((2, 1, 28, 28), np.float32)
    out = prepare_images(imgs, (32, 32, 1), 0.5, 0.5)
    assert out.shape == (2, 1, 32, 32) and out[0, 0, 0, 0] == -1 and out[0, 0, 2, 2] == 1
    with pytest.raises(TrainingError, match="8x8x1 but the network's input is 28x28x1"):
        prepare_images(np.ones((2, 1, 8, 8), np.float32), (28, 28, 1), 0, 1)


@pytest.mark.parametrize("net", ["mnist-inception", "mnist-resnet", "lenet5"])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_predict_logits_split_over_threads_is_the_image_by_image_forward(net, workers):
    """Each thread runs its slice of a batch through the whole folded network: the logits are
    each image's own forward, whatever the worker count and batch (an odd one leaves uneven
    slices, and a last batch smaller than the workers)."""
    from convcli import threads
    from convcli.networks.zoo import get
    from convcli.nn.fold import fold_batch_norm

    model = build_model(analyse(get(net)), seed=0)
    model.eval()
    model = fold_batch_norm(model)
    h, w, c = model.report.network.input
    x = np.random.default_rng(0).standard_normal((11, c, h, w)).astype(np.float32)
    alone = np.concatenate([model.forward(x[i : i + 1]) for i in range(len(x))])
    with threads.using(workers):
        for batch in (None, 5, 1):
            np.testing.assert_allclose(predict_logits(model, x, batch), alone, rtol=1e-5, atol=1e-5)
