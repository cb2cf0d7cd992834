"""The training loop, evaluation metrics and the input preparation both share.

`fit` runs epochs of minibatch gradient descent and reports through callbacks, so the command
line can draw progress and save a checkpoint after every epoch without this module knowing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from convcli import threads
from convcli.errors import TrainingError
from convcli.nn.loss import softmax_cross_entropy
from convcli.nn.memory import inference_batch
from convcli.nn.model import Model
from convcli.nn.optim import Optimizer, scheduled_lr

MNIST_FIELD = 28  # MNIST's digits are 28x28
LENET_PAD = 2  # LeCun et al. 1998 centred the 28x28 MNIST digits in a 32x32 field
EVAL_BATCH = 500  # images per forward pass when the torch backend evaluates


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a run; saved in the checkpoint."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 0.001
    schedule: str = "none"
    weight_decay: float = 0.0
    momentum: float = 0.9
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class PeakMeter:
    """The memory the first ``steps`` training steps really take at their peak: what tracemalloc
    (which numpy reports its buffers to) traces from before the first forward to the end of the
    last measured step, plus what the weights, gradients and optimiser state held before it.

    By the second step every cache and gradient exists, so two steps see a step's peak. Tracing
    stops after them: it slows every allocation, and the rest of the run goes at full speed.
    ``peak`` is None until the steps are done.
    """

    def __init__(self, steps: int = 2) -> None:
        self.steps, self.done = steps, 0
        self.peak: int | None = None
        self._held = self._base = 0
        self._tracing = self._started = False

    def begin(self, model: Model, optimizer: Optimizer) -> None:
        """Before a step's forward: the first call starts tracing (or, if something else traces
        already, measures from where it stands)."""
        if self._tracing or self.peak is not None:
            return
        stores = [s for _, layer in model.named_layers() for s in (layer.params, layer.buffers, layer.grads)]
        self._held = sum(a.nbytes for s in stores for a in s.values())
        self._held += sum(v.nbytes for v in optimizer.state.values())
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        self._tracing = True

    def end(self) -> None:
        """After a step: the last measured step stops tracing."""
        if self._tracing:
            self.done += 1
            if self.done >= self.steps:
                self.finish()

    def finish(self) -> None:
        """Stop now (the run ended, or an epoch was shorter than the measured steps)."""
        if self._tracing:
            self.peak = self._held + tracemalloc.get_traced_memory()[1] - self._base
            if self._started:
                tracemalloc.stop()
            self._tracing = False


@dataclass(frozen=True)
class EpochRecord:
    """One line of the training history."""

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    images_per_second: float

    @classmethod
    def measured(
        cls, epoch: int, lr: float, loss_sum: float, correct: int, seen: int, seconds: float, val: Evaluation | None
    ) -> EpochRecord:
        """The record of epoch ``epoch`` (counted from 0) from its running sums over ``seen``
        images and the validation after it, if any."""
        return cls(
            epoch + 1,
            lr,
            loss_sum / seen,
            correct / seen,
            val.loss if val else None,
            val.accuracy if val else None,
            seconds,
            seen / seconds if seconds else 0.0,
        )


@dataclass(frozen=True)
class Evaluation:
    """Loss, accuracy (a fraction), the confusion matrix ``[true, predicted]`` and per-class
    precision and recall (NaN where a class is never predicted / never present)."""

    loss: float
    accuracy: float
    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    @property
    def n(self) -> int:
        return int(self.confusion.sum())


def input_padding(image_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> int | None:
    """The zero padding on each side that fits data images ``(C, h, w)`` to a network input
    ``(H, W, C)``: 0 when they are the same, `LENET_PAD` for 28x28x1 digits into a 32x32x1 input
    (LeCun et al. 1998 centred MNIST's 28x28 field in 32x32), None when they do not fit.

    >>> input_padding((1, 28, 28), (32, 32, 1)), input_padding((1, 8, 8), (8, 8, 1))
    (2, 0)
    >>> input_padding((1, 8, 8), (28, 28, 1)) is None
    True
    """
    c, h, w = image_shape
    if (h, w, c) == tuple(input_shape):
        return 0
    padded = MNIST_FIELD + 2 * LENET_PAD
    if (h, w, c) == (MNIST_FIELD, MNIST_FIELD, 1) and tuple(input_shape) == (padded, padded, 1):
        return LENET_PAD
    return None


def check_input(image_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> int:
    """`input_padding`, raising `TrainingError` when the images do not fit the input."""
    pad = input_padding(image_shape, input_shape)
    if pad is None:
        c_data, h_data, w_data = image_shape
        h, w, c = input_shape
        raise TrainingError(
            f"the data's images are {h_data}x{w_data}x{c_data} but the network's input is "
            f"{h}x{w}x{c}: give a spec whose input matches the data (28x28 data also fits "
            f"a 32x32x1 input, padded as LeNet-5)"
        )
    return pad


def prepare_images(images: np.ndarray, input_shape: tuple[int, ...], mean: float, std: float) -> np.ndarray:
    """Images (N, C, h, w) in [0, 1] as the network's float32 input: zero-padded by
    `input_padding`, then normalised ``(x - mean) / std``.

    Raises `TrainingError` when the image size does not fit ``input_shape`` (H, W, C).
    """
    pad = check_input(images.shape[1:], input_shape)
    if pad:
        images = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return ((images - np.float32(mean)) / np.float32(std)).astype(np.float32, copy=False)


def check_classes(model: Model, class_names: tuple[str, ...]) -> None:
    """The network's output width must equal the number of classes in the data."""
    k = model.report.layers[-1].out_shape[-1]
    if k != len(class_names):
        raise TrainingError(
            f"the network ends in {k} outputs but the data has {len(class_names)} classes: "
            f"end the spec with fc:{len(class_names)}"
        )


def fit(
    model: Model,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    start_epoch: int = 0,
    on_batch: Callable[[int, int, float, float], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    meter: PeakMeter | None = None,
) -> list[EpochRecord]:
    """Train ``model`` on prepared images ``x`` (N, C, H, W) and labels ``y`` from ``start_epoch``
    to ``config.epochs``; returns the new epochs' records.

    Each epoch shuffles with a generator seeded by ``(seed, epoch)`` and reseeds the dropout
    layers likewise (`Model.reseed`), so a resumed run sees the batches and masks an uninterrupted
    one would. ``meter`` measures the first steps' peak memory (`PeakMeter`).
    ``on_batch(done, total, loss, accuracy)`` follows the
    running means; ``on_epoch(record)`` runs after each epoch (the CLI saves a checkpoint there).
    Raises `TrainingError` as soon as a value overflows float32 or the loss is not finite.
    """
    keep_freed_memory()
    records = []
    n_classes = model.report.layers[-1].out_shape[-1]
    for epoch in range(start_epoch, config.epochs):
        optimizer.lr = scheduled_lr(config.schedule, config.lr, epoch, config.epochs)
        order = np.random.default_rng((config.seed, epoch)).permutation(len(x))
        model.reseed(config.seed, epoch)
        model.train()
        start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        for b in range(0, len(x), config.batch_size):
            idx = order[b : b + config.batch_size]
            if meter:
                meter.begin(model, optimizer)
            with _diverging(config, f"epoch {epoch + 1} (batch {b // config.batch_size + 1})"):
                logits = model.forward(x[idx])
                loss, dlogits = softmax_cross_entropy(logits, y[idx])
                if not np.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss}")
                model.backward(dlogits, input_grad=False)
                optimizer.step()
            if meter:
                meter.end()
            loss_sum += loss * len(idx)
            correct += int((logits.argmax(axis=1) == y[idx]).sum())
            seen += len(idx)
            if on_batch:
                on_batch(seen, len(x), loss_sum / seen, correct / seen)
        if meter:
            meter.finish()  # an epoch shorter than the measured steps
        seconds = time.perf_counter() - start
        val = None
        if validation is not None and len(validation[1]):
            with _diverging(config, f"the validation after epoch {epoch + 1}"):
                val = evaluate(model, *validation, n_classes)
        record = EpochRecord.measured(epoch, optimizer.lr, loss_sum, correct, seen, seconds, val)
        records.append(record)
        if on_epoch:
            on_epoch(record)
    return records


MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> None:
    """Have glibc's malloc keep the arrays a training step frees for the next step to reuse.

    Every batch allocates and frees the same few-megabyte arrays (activations, gradients,
    temporaries). glibc serves a block above its mmap threshold with a fresh mapping, and gives
    the top of its heap back to the system past the trim threshold; either way the next batch's
    arrays land on new pages, which the kernel zero-fills on first touch, and on a small machine
    that fault costs more than the arithmetic (``x * 2`` on 64x16x28x28 float32: 1.7 ms on fresh
    pages, 0.6 ms on reused ones). Raising both thresholds (``mallopt``, as the environment
    variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would) keeps up to
    `TRIM_THRESHOLD` bytes of freed heap in the process. Does nothing where libc is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(-3, MMAP_THRESHOLD_MAX)  # M_MMAP_THRESHOLD
    mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD


@contextmanager
def _diverging(config: TrainConfig, where: str) -> Iterator[None]:
    """Turn float32 overflow (and the NaNs it leads to) into one `TrainingError`.

    Healthy training never overflows: the losses' exponentials are of non-positive numbers and
    the sigmoid is written likewise. Overflow therefore means the weights are running away, even
    while batch norm still keeps the loss finite, so the run stops at the first one instead of
    printing numpy's warnings and going on with garbage.
    """
    try:
        with np.errstate(over="raise", invalid="raise"):
            yield
    except FloatingPointError as err:
        raise diverged(config, where, str(err)) from None


def diverged(config: TrainConfig, where: str, reason: str) -> TrainingError:
    """The error that stops a run whose values ran away (numpy's overflow, PyTorch's NaN loss)."""
    return TrainingError(
        f"training diverged in {where} with --lr {config.lr:g} ({reason}): "
        f"try a lower learning rate, e.g. --lr {config.lr / 10:g}"
    )


def predict_logits(model: Model, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """Logits (N, K) in evaluation mode, in batches of ``batch_size`` images (by default the
    fastest, `convcli.nn.memory.inference_batch`: small enough for each layer's arrays to stay
    in the processor's caches)."""
    model.eval()
    n = batch_size or inference_batch(model.report)
    return np.concatenate([_forward_split(model, x[b : b + n]) for b in range(0, len(x), n)])


def _forward_split(model: Model, x: np.ndarray) -> np.ndarray:
    """``model.forward(x)`` in evaluation mode, each of `convcli.threads.workers`' slices of the
    batch run through the whole network by one thread (its ops inline): nothing couples the
    images, so one handoff a batch replaces one an op. The slices together hold what the whole
    batch's forward would, so `inference_batch`'s budget stands."""
    parts = threads.split_batch(len(x), threads.workers())
    if len(parts) == 1:
        return model.forward(x)
    return np.concatenate(threads.map_parts(lambda s: model.forward(x[s]), parts))


def evaluate(model: Model, x: np.ndarray, y: np.ndarray, n_classes: int) -> Evaluation:
    """Loss, accuracy, confusion matrix and per-class precision/recall on prepared images."""
    return evaluation(predict_logits(model, x), y, n_classes)


def evaluation(logits: np.ndarray, y: np.ndarray, n_classes: int) -> Evaluation:
    """The `Evaluation` of logits (N, K) against labels, whichever backend computed them."""
    loss, _ = softmax_cross_entropy(logits, y)
    predicted = logits.argmax(axis=1)
    confusion = confusion_matrix(y, predicted, n_classes)
    precision, recall = precision_recall(confusion)
    return Evaluation(loss, float((predicted == y).mean()), confusion, precision, recall)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[i, j]`` of images of class ``i`` predicted as ``j``.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    return np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def precision_recall(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class: precision = TP / predicted as the class, recall = TP / truly the class.

    >>> p, r = precision_recall(np.array([[1, 0], [1, 1]]))
    >>> p.tolist(), r.tolist()
    ([0.5, 1.0], [1.0, 0.5])
    """
    tp = np.diag(confusion).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / confusion.sum(axis=0), tp / confusion.sum(axis=1)
