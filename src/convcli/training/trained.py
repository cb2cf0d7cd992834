"""The one core call behind each of ``convcli evaluate`` and ``predict``: a trained checkpoint
loaded as a model, run on a test set or on image files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convcli.errors import InputError, TrainingError
from convcli.networks.report import analyse
from convcli.nn import checkpoint as ckpt
from convcli.nn.checkpoint import Checkpoint
from convcli.nn.fold import fold_batch_norm
from convcli.nn.model import Model, build_model
from convcli.training.datasets import TEST_FRACTION, resolve_test
from convcli.training.loop import Evaluation, evaluate, prepare_images


def load_model(path: Path, fuse: bool = True) -> tuple[Model, Checkpoint]:
    """The trained model in a checkpoint, in evaluation mode; its weights must be finite.
    ``fuse``: see `convcli.nn.model.build_model`."""
    saved = ckpt.load(path)
    saved.check_weights()
    model = build_model(analyse(saved.network), fuse=fuse)
    model.load_state_dict(saved.state)
    model.eval()
    return model, saved


def load_inference_model(path: Path) -> tuple[Model, Checkpoint]:
    """`load_model`'s model with batch norm folded into the convolutions (`convcli.nn.fold`):
    what ``evaluate`` and ``predict`` run."""
    model, saved = load_model(path)
    return fold_batch_norm(model), saved


@dataclass
class EvaluateResult:
    path: Path
    data: str
    class_names: tuple[str, ...]
    evaluation: Evaluation


def evaluate_checkpoint(path: Path, data: str | None = None, data_dir: Path | None = None) -> EvaluateResult:
    """A checkpoint's accuracy, confusion matrix and per-class precision/recall on a test set
    (by default the test part of the data it was trained on)."""
    model, saved = load_inference_model(path)
    info = saved.meta.data
    data = data or info.data
    test = resolve_test(
        data,
        test_fraction=TEST_FRACTION if info.test_fraction is None else info.test_fraction,
        test_seed=info.test_seed or 0,
        data_dir=data_dir,
    )
    if tuple(test.class_names) != info.class_names:
        raise TrainingError(
            f"--data {data} has classes {', '.join(test.class_names)} but the model "
            f"was trained on {', '.join(info.class_names)}"
        )
    x = prepare_images(test.images, saved.network.input, info.mean, info.std)
    return EvaluateResult(path, data, info.class_names, evaluate(model, x, test.labels, len(info.class_names)))


def predict_files(path: Path, files: list[Path], top: int = 3) -> list[dict]:
    """Top-``top`` classes with probabilities for each image file, preprocessed as MNIST was made."""
    from convcli.training.inference import load_digit_image

    if top < 1:
        raise InputError(f"--top {top} must be at least 1")
    model, saved = load_inference_model(path)
    info = saved.meta.data
    names = info.class_names
    images = np.stack([load_digit_image(f, saved.network.input) for f in files])  # N, 1, h, w
    probs = model.probabilities(prepare_images(images, saved.network.input, info.mean, info.std))
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
