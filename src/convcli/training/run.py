"""The one core call behind each of ``convcli train``, ``evaluate`` and ``predict``.

Each function checks its options, loads data and checkpoints, and returns plain results for
`convcli.render.training`; progress is reported through an optional `Reporter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from convcli.errors import InputError, TrainingError
from convcli.networks import spec as S
from convcli.networks.report import analyse
from convcli.nn import checkpoint as ckpt
from convcli.nn.model import Model, build_model, trainable_layers
from convcli.nn.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from convcli.training.loop import (
    EpochRecord,
    Evaluation,
    TrainConfig,
    check_classes,
    check_input,
    evaluate,
    fit,
    prepare_images,
)
from convcli.training.recipes import DEFAULT_FOR_SIZE, default_settings

LR_RANGE = (0.0, 10.0)
MAX_BATCH = 65536


class Reporter(Protocol):
    def download(self, done: int, total: int | None, name: str) -> None: ...
    def start(self, epochs: int, start_epoch: int, n_train: int, model: Model, words: str, macs: int) -> None: ...
    def batch(self, done: int, total: int, loss: float, accuracy: float) -> None: ...
    def epoch(self, record: EpochRecord) -> None: ...


@dataclass(frozen=True)
class TrainRequest:
    """What the user asked for; None means "the default" (or, with ``resume``, the checkpoint's)."""

    words: tuple[str, ...] = ()
    data: str | None = None
    data_dir: Path | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    schedule: str | None = None
    weight_decay: float | None = None
    seed: int | None = None
    validation: float | None = None
    output: Path | None = None
    resume: Path | None = None
    plot: Path | None = None
    mirror: str | None = None


@dataclass
class TrainResult:
    """A finished (or interrupted) run; ``macs`` per image, from `convcli.networks.report.analyse`."""

    name: str
    words: str
    config: TrainConfig
    history: list[dict]
    n_params: int
    class_names: tuple[str, ...]
    output: Path | None
    test: Evaluation | None = None
    interrupted: bool = False
    data: dict = field(default_factory=dict)
    macs: int = 0
    plot: Path | None = None

    @property
    def seconds_per_epoch(self) -> float | None:
        """Mean training time of the epochs in the history (validation not included)."""
        return sum(h["seconds"] for h in self.history) / len(self.history) if self.history else None


def load_spec(words: tuple[str, ...]) -> S.Network:
    """A network from SPEC words, a zoo name (the digit networks included) or a .json file."""
    from convcli.networks.words import load_network

    return load_network(list(words))


def _check_options(r: TrainRequest) -> None:
    if r.lr is not None and not LR_RANGE[0] < r.lr <= LR_RANGE[1]:
        raise TrainingError(f"--lr {r.lr:g} is out of range: give a learning rate in (0, {LR_RANGE[1]:g}]")
    if r.batch_size is not None and not 1 <= r.batch_size <= MAX_BATCH:
        raise TrainingError(f"--batch-size {r.batch_size} is out of range: give 1 to {MAX_BATCH}")
    if r.epochs is not None and r.epochs < 1:
        raise TrainingError(f"--epochs {r.epochs} must be at least 1")
    if r.weight_decay is not None and r.weight_decay < 0:
        raise TrainingError(f"--weight-decay {r.weight_decay:g} must not be negative")
    if r.optimizer is not None and r.optimizer not in OPTIMIZERS:
        raise TrainingError(f"--optimizer {r.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if r.schedule is not None and r.schedule not in SCHEDULES:
        raise TrainingError(f"--schedule {r.schedule!r} is not one of {', '.join(SCHEDULES)}")


def _config(r: TrainRequest, saved: dict, name: str, image_size: tuple[int, int]) -> TrainConfig:
    """The checkpoint's settings when resuming, else the network's defaults (see
    `convcli.training.recipes.default_settings`), overridden by what the user gave."""
    base = TrainConfig(**saved) if saved else TrainConfig(**default_settings(name, image_size))
    given = {
        k: getattr(r, k)
        for k in ("epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "seed")
        if getattr(r, k) is not None
    }
    return replace(base, **given)


def train(r: TrainRequest, reporter: Reporter | None = None) -> TrainResult:
    """Train a network as ``r`` asks, saving a checkpoint after every epoch; see ``convcli train``."""
    from convcli.training.datasets import resolve_data

    _check_options(r)
    output = r.output or r.resume
    if output is not None:
        ckpt.check_output(output)
    if r.plot is not None:
        from convcli.training.curves import check_png

        check_png(r.plot)
    saved = ckpt.load(r.resume) if r.resume is not None else None
    network = load_spec(r.words) if r.words else None
    if saved is not None:
        if network is not None and not ckpt.same_network(network, saved.network):
            raise TrainingError(
                f"the spec given ({ckpt.spec_words(network)}) is not the network in "
                f"{r.resume} ({saved.meta['spec_words']}); leave SPEC out to resume it"
            )
        network = saved.network
        done, epochs = int(saved.meta["epoch"]), r.epochs or saved.meta["config"]["epochs"]
        if done >= epochs:
            raise TrainingError(
                f"{r.resume} has already been trained for {done} epochs: give --epochs above {done} to train further"
            )
    report = analyse(network) if network is not None else None
    if report is not None:
        trainable_layers(report)  # fail on an untrainable layer before loading any data
    data = r.data or (saved.meta["data"]["data"] if saved else "digits")
    seed = r.seed if r.seed is not None else (saved.meta["config"]["seed"] if saved else 0)
    validation = (
        r.validation if r.validation is not None else (saved.meta["data"]["validation_fraction"] if saved else 0.1)
    )
    splits = resolve_data(
        data,
        validation=validation,
        seed=seed,
        data_dir=r.data_dir,
        mirror=r.mirror,
        progress=reporter.download if reporter else None,
    )
    size = tuple(splits.train.images.shape[2:])
    if report is None:
        if size not in DEFAULT_FOR_SIZE:
            raise TrainingError(f"no default network for {size[0]}x{size[1]} images: give a SPEC")
        network = load_spec((DEFAULT_FOR_SIZE[size],))
        report = analyse(network)
    check_input(splits.train.images.shape[1:], network.input)
    config = _config(r, saved.meta["config"] if saved else {}, network.name, size)
    model = build_model(report, seed=config.seed)
    check_classes(model, splits.train.class_names)
    mean, std = (saved.meta["data"]["mean"], saved.meta["data"]["std"]) if saved else (splits.mean, splits.std)
    x, xv, xt = (
        prepare_images(part.images, network.input, mean, std) for part in (splits.train, splits.validation, splits.test)
    )
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay, config.momentum)
    history: list[dict] = []
    start = 0
    if saved is not None:
        model.load_state_dict(saved.state)
        if saved.meta["config"]["optimizer"] == config.optimizer:
            optimizer.load_state_dict(saved.optim)
        history, start = list(saved.meta["history"]), int(saved.meta["epoch"])
    words = ckpt.spec_words(network)
    meta = {
        "spec": ckpt.network_to_json(network),
        "spec_words": words,
        "config": config.to_dict(),
        "data": {**splits.metadata(), "data": data, "mean": mean, "std": std},
    }
    result = TrainResult(
        network.name,
        words,
        config,
        history,
        model.n_params(),
        splits.train.class_names,
        output,
        data=meta["data"],
        macs=report.total("macs"),
        plot=r.plot,
    )

    def on_epoch(record: EpochRecord) -> None:
        history.append(record.__dict__.copy())
        if output is not None:
            ckpt.save(
                output, model.state_dict(), optimizer.state_dict(), {**meta, "epoch": record.epoch, "history": history}
            )
        if r.plot is not None:
            from convcli.training.curves import training_curves, write_png

            write_png(r.plot, training_curves(history, network.name or ""))
        if reporter:
            reporter.epoch(record)

    if reporter:
        reporter.start(config.epochs, start, len(x), model, words, result.macs)
    try:
        fit(
            model,
            optimizer,
            x,
            splits.train.labels,
            config,
            validation=(xv, splits.validation.labels),
            start_epoch=start,
            on_batch=reporter.batch if reporter else None,
            on_epoch=on_epoch,
        )
    except KeyboardInterrupt:
        result.interrupted = True
        return result
    result.test = evaluate(model, xt, splits.test.labels, len(splits.train.class_names))
    if output is not None:
        ckpt.save(
            output,
            model.state_dict(),
            optimizer.state_dict(),
            {**meta, "epoch": config.epochs, "history": history, "test_accuracy": result.test.accuracy},
        )
    return result


def load_model(path: Path) -> tuple[Model, ckpt.Checkpoint]:
    """The trained model in a checkpoint, in evaluation mode."""
    saved = ckpt.load(path)
    model = build_model(analyse(saved.network))
    model.load_state_dict(saved.state)
    model.eval()
    return model, saved


@dataclass
class EvaluateResult:
    path: Path
    data: str
    class_names: tuple[str, ...]
    evaluation: Evaluation


def evaluate_checkpoint(path: Path, data: str | None = None, data_dir: Path | None = None) -> EvaluateResult:
    """A checkpoint's accuracy, confusion matrix and per-class precision/recall on a test set
    (by default the test part of the data it was trained on)."""
    from convcli.training.datasets import resolve_data

    model, saved = load_model(path)
    info = saved.meta["data"]
    data = data or info["data"]
    splits = resolve_data(data, validation=info["validation_fraction"], seed=info["seed"], data_dir=data_dir)
    names = tuple(info["class_names"])
    if tuple(splits.test.class_names) != names:
        raise TrainingError(
            f"--data {data} has classes {', '.join(splits.test.class_names)} but the model "
            f"was trained on {', '.join(names)}"
        )
    x = prepare_images(splits.test.images, saved.network.input, info["mean"], info["std"])
    return EvaluateResult(path, data, names, evaluate(model, x, splits.test.labels, len(names)))


def predict_files(path: Path, files: list[Path], top: int = 3) -> list[dict]:
    """Top-``top`` classes with probabilities for each image file, preprocessed as MNIST was made."""
    from convcli.training.inference import load_digit_image

    if top < 1:
        raise InputError(f"--top {top} must be at least 1")
    model, saved = load_model(path)
    info = saved.meta["data"]
    names = info["class_names"]
    images = np.stack([load_digit_image(f, saved.network.input[:2]) for f in files])  # N, 1, H, W
    probs = model.probabilities(prepare_images(images, saved.network.input, info["mean"], info["std"]))
    results = []
    for f, p in zip(files, probs):
        order = np.argsort(-p, kind="stable")[: min(top, len(names))]
        results.append(
            {
                "file": str(f),
                "prediction": names[order[0]],
                "top": [{"class": names[k], "probability": float(p[k])} for k in order],
            }
        )
    return results
