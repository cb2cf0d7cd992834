"""The steps of convcli.training.run.train, each on its own: options, resume, spec, settings,
data, model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from convcli.errors import TrainingError
from convcli.networks.report import analyse
from convcli.networks.spec import same_network
from convcli.networks.words import parse_words
from convcli.nn import checkpoint as ckpt
from convcli.nn.checkpoint import DataInfo, Metadata
from convcli.nn.model import build_model
from convcli.nn.optim import make_optimizer
from convcli.training import run
from convcli.training.datasets import resolve_data
from convcli.training.loop import EpochRecord, TrainConfig
from convcli.training.run import TrainRequest

SMALL = ("8x8x1", "flatten", "fc:10")


@pytest.fixture
def saved(tmp_path):
    """A checkpoint of SMALL after 2 of 4 epochs with momentum, its weights all 0.5."""
    network = parse_words(list(SMALL))
    model = build_model(analyse(network))
    model.load_state_dict({k: np.full_like(v, 0.5) for k, v in model.state_dict().items()})
    optimizer = make_optimizer("momentum", model, 0.1)
    optimizer.state = {"1.w": np.ones((64, 10), np.float32)}
    splits = resolve_data("digits", validation=0.2, seed=3)
    info = run.data_info("digits", splits, None)
    records = tuple(EpochRecord(e, 0.1, 1.0, 0.5, None, None, 1.0, 10.0) for e in (1, 2))
    meta = Metadata(network, TrainConfig(epochs=4, optimizer="momentum", lr=0.1, seed=3), info, 2, records)
    path = ckpt.save(tmp_path / "m.npz", model.state_dict(), optimizer.state_dict(), meta)
    return ckpt.load(path)


@pytest.mark.parametrize(
    "option, fragment",
    [
        ({"lr": 0.0}, "--lr 0"),
        ({"batch_size": 0}, "--batch-size 0"),
        ({"epochs": 0}, "--epochs 0"),
        ({"weight_decay": -1.0}, "--weight-decay -1"),
        ({"optimizer": "rmsprop"}, "--optimizer 'rmsprop'"),
        ({"schedule": "linear"}, "--schedule 'linear'"),
    ],
)
def test_check_options_names_the_option(option, fragment):
    with pytest.raises(TrainingError, match=fragment):
        run.check_options(TrainRequest(**option))


def test_config_from_recipe_checkpoint_and_options(saved):
    lenet = run.load_spec(("lenet5",))
    assert run.make_config(TrainRequest(), None, lenet).optimizer == "momentum"  # lenet5's recipe
    digits = run.make_config(TrainRequest(lr=0.5), None, parse_words(list(SMALL)))
    assert (digits.epochs, digits.batch_size, digits.lr) == (20, 32, 0.5)  # 8x8 defaults, --lr wins
    resumed = run.make_config(TrainRequest(epochs=6), saved, saved.network)
    assert resumed == replace(saved.meta.config, epochs=6)


def test_resume_needs_epochs_left(saved):
    assert run.resume_from(TrainRequest(resume=saved.path)).meta.epoch == 2
    with pytest.raises(TrainingError, match="already been trained for 2 epochs"):
        run.resume_from(TrainRequest(resume=saved.path, epochs=2))


def test_requested_network(saved):
    assert run.requested_network(TrainRequest(), None) is None  # the data's size will pick one
    assert run.requested_network(TrainRequest(words=SMALL), None).input == (8, 8, 1)
    assert same_network(run.requested_network(TrainRequest(words=SMALL), saved), saved.network)
    with pytest.raises(TrainingError, match="is not the network in"):
        run.requested_network(TrainRequest(words=("8x8x1", "flatten", "fc:5")), saved)
    assert run.default_network((28, 28)).name == "mnist-cnn"
    with pytest.raises(TrainingError, match="no default network for 5x5"):
        run.default_network((5, 5))


def test_plan_refuses_untrainable_layers_before_any_data():
    with pytest.raises(TrainingError, match="cannot be trained"):
        run.plan(TrainRequest(), None, run.load_spec(("lenet5-1998",)))


def test_data_from_the_checkpoint_when_resuming(saved):
    splits = run.load_splits(TrainRequest(), saved)
    assert (splits.seed, splits.validation_fraction) == (3, 0.2)
    info = run.data_info("digits", splits, saved)
    assert info == saved.meta.data and isinstance(info, DataInfo)
    fresh = run.data_info("digits", run.load_splits(TrainRequest(), None), saved)
    assert (fresh.mean, fresh.std) == (saved.meta.data.mean, saved.meta.data.std)  # normalisation kept


def test_build_or_resume(saved):
    report = analyse(saved.network)
    model, optimizer, history = run.build_or_resume(report, saved.meta.config, saved)
    assert np.all(model.state_dict()["1.w"] == 0.5) and optimizer.state["1.w"].sum() == 640
    assert history == saved.meta.history
    other = replace(saved.meta.config, optimizer="adam")
    _, adam, _ = run.build_or_resume(report, other, saved)
    assert adam.state == {}  # another optimiser's state is not carried over
    _, _, none = run.build_or_resume(report, saved.meta.config, None)
    assert none == ()
