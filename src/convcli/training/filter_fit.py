"""Learning a filter by gradient descent: the smallest CNN there is, one kernel and no bias.

``convcli train-filter`` starts a kernel of the target's size from random weights and trains it
so that convolving images with it reproduces what a named kernel (`convcli.images.kernels`) gives:

    loss(w) = mean over every image n and valid output pixel (r, c) of (x_n * w - x_n * t)[r, c]^2

where ``*`` is the cross-correlation of `convcli.conv2d_forward` and ``t`` the target. Its
gradient comes from `convcli.conv2d_backward`, as every convolution in ``convcli train``.
The loss is quadratic in ``w``, so the weights that minimise it are the target's exactly, as
soon as the images hold enough different patches.

Why it converges in a few hundred steps: each image is standardised (zero mean, unit variance),
so the Hessian ``2 R`` (R: the correlation matrix of the images' f x f patches) has its largest
eigenvalue at most ``2 f^2`` (the trace). Heavy-ball momentum ``mu`` is stable for
``lr < 2 (1 + mu) / lambda_max``; the default ``lr = 1 / f^2`` stays well inside that bound for
any images, and momentum speeds up the slow directions (the fine checkerboard patterns natural
images hold little of).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from convcli.errors import InputError, TrainingError
from convcli.images.kernels import Kernel, get_kernel
from convcli.ops.conv import ConvCache, conv2d_backward, conv2d_forward
from convcli.training.curves import check_png, loss_curve, write_png

MOMENTUM = 0.9
DEFAULT_STEPS = 300
DEFAULT_SIZE = 128
MAX_STEPS = 1_000_000


class FilterReporter(Protocol):
    def start(self, steps: int, target: Kernel, images: int, size: int) -> None: ...
    def step(self, step: int, steps: int, mse: float, weights: np.ndarray) -> None: ...


@dataclass(frozen=True)
class FilterRequest:
    """What ``convcli train-filter`` asks for; ``lr`` None means ``1 / (fH * fW)``."""

    images: tuple[Path, ...]
    target: str
    steps: int = DEFAULT_STEPS
    lr: float | None = None
    size: int = DEFAULT_SIZE
    seed: int = 0
    plot: Path | None = None


@dataclass
class FilterResult:
    """The learned kernel beside the target, and the loss after every step: ``history[k]`` is
    the MSE after ``k`` steps (``history[0]``: the random initial weights'), ``mse`` the last."""

    target: Kernel
    initial: np.ndarray
    learned: np.ndarray
    history: list[float]
    lr: float
    momentum: float
    seed: int
    images: tuple[Path, ...]
    crop: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    plot: Path | None = None

    @property
    def mse(self) -> float:
        return self.history[-1]

    @property
    def steps(self) -> int:
        return len(self.history) - 1

    @property
    def max_error(self) -> float:
        return float(np.abs(self.learned - self.target.array()).max())


def load_crops(paths: tuple[Path, ...], size: int) -> tuple[np.ndarray, int, list[str]]:
    """Images as one standardised float64 batch (N, 1, s, s): grey, shrunk so the shorter side is
    at most ``size`` (box filter), centre-cropped to the smallest shorter side ``s``."""
    from PIL import Image

    from convcli.images.read import read_image

    planes: list[np.ndarray] = []
    notes: list[str] = []
    for path in paths:
        loaded = read_image(path, channels="gray")
        notes.extend(loaded.notes)
        plane = loaded.array[0]  # H, W
        short = min(plane.shape)
        if short > size:
            h, w = (round(n * size / short) for n in plane.shape)
            plane = np.asarray(Image.fromarray(plane).resize((w, h), Image.Resampling.BOX))
        planes.append(plane)
    s = min(min(p.shape) for p in planes)
    crops = []
    for path, plane in zip(paths, planes):
        top, left = (plane.shape[0] - s) // 2, (plane.shape[1] - s) // 2
        crop = plane[top : top + s, left : left + s].astype(np.float64)
        if crop.std() < 1e-6:
            raise InputError(f"{path}: the image is one flat grey level; a filter cannot be learned from it")
        crops.append((crop - crop.mean()) / crop.std())
    return np.stack(crops)[:, None], s, notes  # N, 1, s, s


def _mse(x: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, ConvCache]:
    """Loss, its gradient with respect to the output, and the forward's cache."""
    out, cache = conv2d_forward(x, w[None, None])  # N, 1, s-fH+1, s-fW+1
    diff = out - y
    return float(np.mean(diff * diff)), 2 * diff / diff.size, cache


def learn_filter(r: FilterRequest, reporter: FilterReporter | None = None) -> FilterResult:
    """Train a kernel of the target's shape to reproduce the target's response on ``r.images``.

    Raises `InputError` for an unknown target or an unreadable, flat or too small image, and
    `TrainingError` for steps, learning rate or crop size out of range, or a diverging loss.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> noise = np.random.default_rng(0).integers(0, 256, (40, 40)).astype(np.uint8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     Image.fromarray(noise).save(pathlib.Path(folder) / "noise.png")
    ...     result = learn_filter(FilterRequest((pathlib.Path(folder) / "noise.png",), "sobel-x"))
    >>> (result.learned.round(3) + 0.0).tolist()   # + 0.0 turns -0.0 into 0.0
    [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
    """
    target = get_kernel(r.target)
    t = target.array()
    fh, fw = t.shape
    if not 1 <= r.steps <= MAX_STEPS:
        raise TrainingError(f"--steps {r.steps} is out of range: give 1 to {MAX_STEPS:,}")
    lr = r.lr if r.lr is not None else 1 / t.size
    if not 0 < lr <= 10:
        raise TrainingError(f"--lr {lr:g} is out of range: give a learning rate in (0, 10]")
    if r.size < max(fh, fw) + 1:
        raise TrainingError(
            f"--size {r.size} is too small for the {fh}x{fw} kernel {target.name}: give at least {max(fh, fw) + 1}"
        )
    if not r.images:
        raise InputError("give at least one image to learn from")
    if r.plot is not None:
        check_png(r.plot, r.images)
    x, crop, notes = load_crops(r.images, r.size)
    if crop < max(fh, fw) + 1:
        raise InputError(
            f"the images must be at least {max(fh, fw) + 1} pixels on each side to learn "
            f"a {fh}x{fw} kernel; the smallest is {crop}"
        )
    y, _ = conv2d_forward(x, t[None, None])
    rng = np.random.default_rng(r.seed)
    w = rng.standard_normal(t.shape) / np.sqrt(t.size)  # LeCun normal: var 1/fan_in
    initial, velocity = w.copy(), np.zeros_like(w)
    if reporter:
        reporter.start(r.steps, target, len(x), crop)
    start = time.perf_counter()
    mse, dout, cache = _mse(x, w, y)
    history = [mse]
    for k in range(1, r.steps + 1):
        if reporter:
            reporter.step(k - 1, r.steps, mse, w)
        _, dw, _ = conv2d_backward(dout, cache)
        velocity = MOMENTUM * velocity + dw[0, 0]
        w = w - lr * velocity
        mse, dout, cache = _mse(x, w, y)
        if not np.isfinite(mse) or mse > 1e12:
            raise TrainingError(
                f"the loss diverged ({mse:.3g}) at step {k} with --lr {lr:g}: "
                f"try a lower learning rate, e.g. --lr {lr / 10:g}"
            )
        history.append(mse)
    if reporter:
        reporter.step(r.steps, r.steps, mse, w)
    seconds = time.perf_counter() - start
    if r.plot is not None:
        write_png(r.plot, loss_curve(history, f"learning {target.name}: loss per step"), r.images)
    return FilterResult(
        target, initial, w, history, lr, MOMENTUM, r.seed, tuple(r.images), crop, seconds, notes, r.plot
    )
