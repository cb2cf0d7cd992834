"""The one core call behind ``convcli train`` (``evaluate`` and ``predict``: `convcli.training.trained`).

`train` is a sequence of steps, each a function of its own that can be tested alone: check the
options, place the run (backend, device, which process of how many), load the checkpoint to
resume, check the outputs, resolve the spec, plan the run (layers, settings), load the data,
build or resume the model, then fit, evaluate and save. The numpy backend fits with
`convcli.training.loop.fit`, the torch backend with `convcli.training.torch_loop.TorchTrainer`,
on the same model, settings, callbacks and checkpoint.
Every check runs before the first epoch. Results are plain objects for
`convcli.render.training`; progress is reported through an optional `Reporter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Protocol

from convcli.errors import DataError, TrainingError
from convcli.networks import spec as S
from convcli.networks.report import Report, analyse
from convcli.networks.spec import same_network
from convcli.networks.words import format_network
from convcli.nn import checkpoint as ckpt
from convcli.nn import memory
from convcli.nn.checkpoint import Checkpoint, DataInfo, Metadata
from convcli.nn.choices import BACKENDS, DEVICES
from convcli.nn.model import Model, build_model, trainable_layers
from convcli.nn.optim import OPTIMIZERS, SCHEDULES, Optimizer, make_optimizer
from convcli.training.datasets import DataSplits, data_files, resolve_data
from convcli.training.download import mirror_url
from convcli.training.loop import (
    EpochRecord,
    Evaluation,
    PeakMeter,
    TrainConfig,
    check_classes,
    check_input,
    evaluate,
    fit,
    prepare_images,
)
from convcli.training.placement import Placement, launched
from convcli.training.recipes import DEFAULT_FOR_SIZE, default_settings

LR_RANGE = (0.0, 10.0)
MAX_BATCH = 65536
DEFAULT_VALIDATION = 0.1
MAX_TRAINING_BYTES = 8 * 2**30  # refused before allocating; numpy training of more is impractical anyway


class Reporter(Protocol):
    def download(self, done: int, total: int | None, name: str) -> None: ...
    def start(self, epochs: int, start_epoch: int, n_train: int, model: Model, words: str, macs: int) -> None: ...
    def batch(self, done: int, total: int, loss: float, accuracy: float) -> None: ...
    def epoch(self, record: EpochRecord) -> None: ...


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    """What the user asked for; None means "the default" (or, with ``resume``, the checkpoint's).
    Seventeen options of which any may be left out: built with keywords only. ``backend`` and
    ``device`` say what computes (see `convcli.training.torch_loop`), not what is computed: they
    are not saved, and a checkpoint resumes on either backend."""

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
    backend: str = "numpy"
    device: str | None = None


@dataclass(frozen=True)
class MemoryCheck:
    """A training step's peak memory in bytes: `convcli.nn.memory.estimate`'s for the run's batch
    size and optimiser, and what the first steps measured (`convcli.training.loop.PeakMeter`;
    None when the run took no step)."""

    batch_size: int
    estimate: int
    measured: int | None


@dataclass
class TrainResult:
    """A finished (or interrupted) run: its metadata as last saved, ``macs`` per image (from
    `convcli.networks.report.analyse`), the test evaluation unless interrupted, and where it ran
    (only rank 0 of several processes evaluates, writes and has a result to show)."""

    meta: Metadata
    n_params: int
    macs: int
    output: Path | None = None
    plot: Path | None = None
    test: Evaluation | None = None
    interrupted: bool = False
    memory: MemoryCheck | None = None
    placement: Placement = field(default_factory=Placement)

    @property
    def name(self) -> str:
        return self.meta.network.name

    @property
    def words(self) -> str:
        return format_network(self.meta.network)

    @property
    def config(self) -> TrainConfig:
        return self.meta.config

    @property
    def history(self) -> tuple[EpochRecord, ...]:
        return self.meta.history

    @property
    def data(self) -> DataInfo:
        return self.meta.data

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.meta.data.class_names

    @property
    def seconds_per_epoch(self) -> float | None:
        """Mean training time of the epochs in the history (validation not included)."""
        return sum(h.seconds for h in self.history) / len(self.history) if self.history else None


def load_spec(words: tuple[str, ...]) -> S.Network:
    """A network from SPEC words, a zoo name (the digit networks included) or a .json file."""
    from convcli.networks.load import load_network

    return load_network(list(words))


def check_options(r: TrainRequest) -> None:
    """Refuse settings out of range, naming the option."""
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
    if r.mirror is not None:
        mirror_url(r.mirror)
    if r.backend not in BACKENDS:
        raise TrainingError(f"--backend {r.backend!r} is not one of {', '.join(BACKENDS)}")
    if r.device is not None and r.device not in DEVICES:
        raise TrainingError(f"--device {r.device!r} is not one of {', '.join(DEVICES)}")
    if r.backend == "numpy":
        if r.device == "cuda":
            raise TrainingError("--device cuda needs --backend torch: the numpy backend computes on the CPU")
        processes = launched()[0]
        if processes > 1:
            raise TrainingError(
                f"torchrun started {processes} processes, which only --backend torch trains together "
                "(the numpy backend would train a copy in each)"
            )
    else:
        from convcli.training.torch_loop import check_torch

        check_torch()


def place(r: TrainRequest) -> Placement:
    """Where this process trains (`convcli.training.torch_loop.place` for the torch backend)."""
    if r.backend == "numpy":
        return Placement()
    from convcli.training.torch_loop import place as place_torch

    return place_torch(r.device or "auto")


def resume_from(r: TrainRequest) -> Checkpoint | None:
    """The checkpoint ``--resume`` names, with finite weights and epochs left to train; None
    without ``--resume``."""
    if r.resume is None:
        return None
    saved = ckpt.load(r.resume)
    saved.check_weights()
    done, epochs = saved.meta.epoch, r.epochs or saved.meta.config.epochs
    if done >= epochs:
        raise TrainingError(
            f"{r.resume} has already been trained for {done} epochs: give --epochs above {done} to train further"
        )
    return saved


def check_outputs(r: TrainRequest, saved: Checkpoint | None) -> tuple[Path | None, list[Path]]:
    """The checkpoint to write (``-o``, else the one resumed, else none) and the input files no
    output may overwrite, after checking, before any work is done, that the checkpoint and the
    ``--plot`` can be written and are neither inputs nor each other. Writing over the checkpoint
    resumed is what ``--resume`` does; the plot must not."""
    inputs = data_files(data_word(r, saved), r.data_dir)
    output = r.output or r.resume
    if output is not None:
        ckpt.check_output(output, inputs)
    if r.plot is not None:
        from convcli.training.curves import check_png

        check_png(r.plot, plot_inputs(r, inputs), [output] if output else [])
    return output, inputs


def plot_inputs(r: TrainRequest, inputs: list[Path]) -> list[Path]:
    return [*inputs, r.resume] if r.resume is not None else inputs


def requested_network(r: TrainRequest, saved: Checkpoint | None) -> S.Network | None:
    """The network to train: the SPEC, or the resumed checkpoint's (the SPEC, if given too, must be
    the same); None when neither names one, and the data's image size picks it."""
    network = load_spec(r.words) if r.words else None
    if saved is None:
        return network
    if network is not None and not same_network(network, saved.network):
        raise TrainingError(
            f"the spec given ({format_network(network)}) is not the network in "
            f"{r.resume} ({format_network(saved.network)}); leave SPEC out to resume it"
        )
    return saved.network


def default_network(image_size: tuple[int, ...]) -> S.Network:
    """The network `convcli.training.recipes` picks for data of ``image_size`` (H, W)."""
    if image_size not in DEFAULT_FOR_SIZE:
        raise TrainingError(f"no default network for {image_size[0]}x{image_size[1]} images: give a SPEC")
    return load_spec((DEFAULT_FOR_SIZE[image_size],))


def make_config(r: TrainRequest, saved: Checkpoint | None, network: S.Network) -> TrainConfig:
    """The checkpoint's settings when resuming, else the network's defaults (see
    `convcli.training.recipes.default_settings`), overridden by what the user gave."""
    # The data must fit the input (28x28 digits only pad into 32x32), so the input's size picks
    # the same defaults as the data's.
    base = saved.meta.config if saved else TrainConfig(**default_settings(network.name, network.input[:2]))
    given = {
        k: getattr(r, k)
        for k in ("epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "seed")
        if getattr(r, k) is not None
    }
    return replace(base, **given)


def plan(r: TrainRequest, saved: Checkpoint | None, network: S.Network) -> tuple[Report, TrainConfig]:
    """The network's layers and the run's settings, after checking, without allocating any weights,
    that every layer can be trained and that training fits in memory."""
    report = analyse(network)
    trainable_layers(report)
    config = make_config(r, saved, network)
    check_memory(report, config)
    return report, config


def check_memory(report: Report, config: TrainConfig) -> None:
    """Refuse a run that would need more than `MAX_TRAINING_BYTES`: a training step's peak at the
    run's batch size, or an evaluation forward's at its batch (`convcli.nn.memory.inference_batch`),
    whichever is larger (`convcli.nn.memory.estimate`)."""
    step = memory.estimate(report, config.batch_size, config.optimizer).training_peak
    eval_batch = memory.inference_batch(report)
    evaluation = memory.estimate(report, eval_batch, config.optimizer).inference_peak
    need, batch = max((step, config.batch_size), (evaluation, eval_batch))
    if need > MAX_TRAINING_BYTES:
        raise TrainingError(
            f"training {format_network(report.network)} would need about {need / 2**30:,.1f} GiB of memory "
            f"({report.total('params'):,} parameters with {config.optimizer}, activations of {batch} images), "
            f"more than the {MAX_TRAINING_BYTES / 2**30:g} GiB convcli allows: give a smaller network"
        )


def load_splits(r: TrainRequest, saved: Checkpoint | None, reporter: Reporter | None = None) -> DataSplits:
    """The data ``--data`` names (else the checkpoint's, else the built-in digits), split with
    ``--seed`` and ``--validation`` (else the checkpoint's, else 0 and 10%); refused when every
    training pixel has the same value."""
    word = data_word(r, saved)
    validation, seed = DEFAULT_VALIDATION, 0
    if saved is not None:
        validation, seed = saved.meta.data.validation_fraction, saved.meta.config.seed
    splits = resolve_data(
        word,
        validation=validation if r.validation is None else r.validation,
        seed=seed if r.seed is None else r.seed,
        data_dir=r.data_dir,
        mirror=r.mirror,
        progress=reporter.download if reporter else None,
    )
    lo, hi = float(splits.train.images.min()), float(splits.train.images.max())
    if lo == hi:
        raise DataError(
            f"--data {word}: every training image is the same flat grey level ({lo:g} on a 0-1 scale); "
            "there is nothing to learn from"
        )
    return splits


def data_word(r: TrainRequest, saved: Checkpoint | None) -> str:
    return r.data or (saved.meta.data.data if saved else "digits")


def data_info(word: str, splits: DataSplits, saved: Checkpoint | None) -> DataInfo:
    """What the checkpoint records about the data; a resumed run keeps its normalisation."""
    mean, std = (saved.meta.data.mean, saved.meta.data.std) if saved else (splits.mean, splits.std)
    return DataInfo(
        data=word,
        class_names=tuple(splits.train.class_names),
        image_shape=tuple(splits.train.images.shape[1:]),
        mean=mean,
        std=std,
        seed=splits.seed,
        validation_fraction=splits.validation_fraction,
        test_fraction=splits.test_fraction,
        test_seed=splits.test_seed,
        sizes={"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
    )


def build_or_resume(
    report: Report, config: TrainConfig, saved: Checkpoint | None
) -> tuple[Model, Optimizer, tuple[EpochRecord, ...]]:
    """A new model and optimiser, or the resumed checkpoint's (its optimiser state only if the
    optimiser is the same), and the history so far."""
    model = build_model(report, seed=config.seed)
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay, config.momentum)
    if saved is None:
        return model, optimizer, ()
    model.load_state_dict(saved.state)
    if saved.meta.config.optimizer == config.optimizer:
        optimizer.load_state_dict(saved.optim)
    return model, optimizer, saved.meta.history


def backend(
    placement: Placement, model: Model, optimizer: Optimizer, config: TrainConfig, meter: PeakMeter | None = None
):
    """`fit` and `evaluate` of the placement's backend, bound to ``model`` (and ``optimizer``):
    `convcli.training.loop`'s (``meter`` measuring the numpy run's peak memory), or
    `convcli.training.torch_loop.TorchTrainer`'s, which copies the weights back into ``model``
    after every epoch."""
    if placement.backend == "numpy":
        return partial(fit, model, optimizer, meter=meter), partial(evaluate, model)
    from convcli.training.torch_loop import TorchTrainer

    trainer = TorchTrainer(model, optimizer, placement, config.batch_size)
    return trainer.fit, trainer.evaluate


def train(r: TrainRequest, reporter: Reporter | None = None) -> TrainResult:
    """Train a network as ``r`` asks, saving a checkpoint after every epoch; see ``convcli train``."""
    check_options(r)
    placement = place(r)
    saved = resume_from(r)
    output, inputs = check_outputs(r, saved)
    if placement.rank:  # of several processes, the first reports and writes
        reporter, output, r = None, None, replace(r, plot=None)
    network = requested_network(r, saved)
    if network is not None:  # fail on an untrainable layer before loading any data
        report, config = plan(r, saved, network)
    splits = load_splits(r, saved, reporter)
    if network is None:
        network = default_network(tuple(splits.train.images.shape[2:]))
        report, config = plan(r, saved, network)
    check_input(splits.train.images.shape[1:], network.input)
    info = data_info(data_word(r, saved), splits, saved)
    model, optimizer, history = build_or_resume(report, config, saved)
    check_classes(model, info.class_names)
    x, xv, xt = (
        prepare_images(part.images, network.input, info.mean, info.std)
        for part in (splits.train, splits.validation, splits.test)
    )
    result = TrainResult(
        Metadata(network, config, info, epoch=saved.meta.epoch if saved else 0, history=history),
        n_params=model.n_params(),
        macs=report.total("macs"),
        output=output,
        plot=r.plot,
        placement=placement,
    )
    # numpy's arrays are what tracemalloc sees, and what the estimate counts: not torch's
    meter = PeakMeter() if placement.backend == "numpy" else None
    run_fit, run_evaluate = backend(placement, model, optimizer, config, meter)

    def save(meta: Metadata) -> None:
        result.meta = meta
        if output is not None:
            ckpt.save(output, model.state_dict(), optimizer.state_dict(), meta, inputs)

    def on_epoch(record: EpochRecord) -> None:
        save(replace(result.meta, epoch=record.epoch, history=result.meta.history + (record,)))
        if r.plot is not None:
            from convcli.training.curves import training_curves, write_png

            write_png(r.plot, training_curves(result.history, network.name or ""), plot_inputs(r, inputs))
        if reporter:
            reporter.epoch(record)

    if reporter:
        reporter.start(config.epochs, result.meta.epoch, len(x), model, result.words, result.macs)
    try:
        run_fit(
            x,
            splits.train.labels,
            config,
            validation=(xv, splits.validation.labels),
            start_epoch=result.meta.epoch,
            on_batch=reporter.batch if reporter else None,
            on_epoch=on_epoch,
        )
    except KeyboardInterrupt:
        result.interrupted = True
        return result
    finally:
        if meter is not None:
            meter.finish()
            estimate = memory.estimate(report, config.batch_size, config.optimizer).training_peak
            result.memory = MemoryCheck(config.batch_size, estimate, meter.peak)
    if placement.rank:
        return result
    result.test = run_evaluate(xt, splits.test.labels, len(info.class_names))
    save(replace(result.meta, test_accuracy=result.test.accuracy))
    return result
