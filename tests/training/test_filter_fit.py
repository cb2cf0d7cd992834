"""Learning a filter by gradient descent (convcli.training.filter_fit) and the train-filter command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.signal import correlate2d

from convcli.errors import InputError, OutputError, TrainingError
from convcli.images.kernels import get_kernel
from convcli.training.curves import PANEL
from convcli.training.filter_fit import FilterRequest, learn_filter, load_crops

from conftest import PHOTOS as SAMPLES
from conftest import run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_sobel_x_from_random_weights(seed):
    result = learn_filter(FilterRequest(SAMPLES, "sobel-x", seed=seed))
    assert np.abs(result.initial - get_kernel("sobel-x").array()).max() > 0.5  # a real start
    np.testing.assert_allclose(result.learned, get_kernel("sobel-x").array(), atol=1e-2)
    assert result.max_error < 1e-2 and result.mse < 1e-6 < result.history[0]


@pytest.mark.parametrize("name", ["laplacian", "roberts-y", "gaussian-5", "box"])
def test_recovers_other_shapes_and_kinds(name):
    result = learn_filter(FilterRequest(SAMPLES, name, steps=400, size=64))
    assert result.learned.shape == get_kernel(name).shape
    np.testing.assert_allclose(result.learned, get_kernel(name).array(), atol=1e-2)


def test_loss_is_the_mse_of_the_valid_correlation():
    """history[0] and the final MSE, recomputed with scipy on the same standardised crops."""
    result = learn_filter(FilterRequest(SAMPLES[:2], "scharr-y", steps=20, size=40, seed=5))
    crops, size, _ = load_crops(SAMPLES[:2], 40)
    target = get_kernel("scharr-y").array()

    def mse(w):
        return np.mean([(correlate2d(c[0], w, "valid") - correlate2d(c[0], target, "valid")) ** 2 for c in crops])

    assert size == result.crop == 40 and len(result.history) == 21
    assert result.history[0] == pytest.approx(mse(result.initial), rel=1e-9)
    assert result.mse == pytest.approx(mse(result.learned), rel=1e-9)


def test_crops_are_standardised_squares(tmp_path):
    Image.new("RGB", (300, 200), (200, 10, 10)).save(tmp_path / "flat.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90), dtype=np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(rng.integers(0, 256, (500, 400), dtype=np.uint8)).save(tmp_path / "big.png")
    x, size, _ = load_crops((tmp_path / "big.png", tmp_path / "small.png"), 128)
    assert x.shape == (2, 1, 60, 60) and size == 60
    np.testing.assert_allclose(x.mean(axis=(2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(x.std(axis=(2, 3)), 1)
    with pytest.raises(InputError, match="flat.png: the image is one flat grey level"):
        load_crops((tmp_path / "flat.png",), 128)


def test_same_seed_same_run_and_seeds_differ():
    a, b, c = (learn_filter(FilterRequest(SAMPLES[:1], "sobel-y", steps=5, size=32, seed=s)) for s in (3, 3, 4))
    assert a.history == b.history and np.array_equal(a.learned, b.learned)
    assert not np.array_equal(a.initial, c.initial)


def test_reporter_sees_every_step():
    seen = []

    class Recorder:
        def start(self, steps, target, images, size):
            seen.append(("start", steps, target.name, images, size))

        def step(self, step, steps, mse, weights):
            seen.append((step, mse))

    result = learn_filter(FilterRequest(SAMPLES[:1], "sobel-x", steps=4, size=32), Recorder())
    assert seen[0] == ("start", 4, "sobel-x", 1, 32)
    assert seen[1:] == list(enumerate(result.history))


@pytest.mark.parametrize(
    "request_kw, error, fragment",
    [
        (dict(target="sobelx"), InputError, "did you mean 'sobel-x'"),
        (dict(steps=0), TrainingError, "--steps 0"),
        (dict(lr=-1.0), TrainingError, "--lr -1"),
        (dict(size=3), TrainingError, "--size 3 is too small"),
        (dict(lr=5.0), TrainingError, "the loss diverged"),
        (dict(images=()), InputError, "at least one image"),
        (dict(plot=Path("curve.jpg")), OutputError, "end the name in .png"),
    ],
)
def test_errors(request_kw, error, fragment):
    kw = dict(images=SAMPLES[:1], target="sobel-x", size=32) | request_kw
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        learn_filter(FilterRequest(**kw))


def test_cli_table_and_progress():
    result = run("train-filter", *SAMPLES, "--target", "sobel-x")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "sobel-x: learned after 300 steps (3 images, 128x128 crops)"
    assert lines[1].split() == ["learned", "target", "learned", "-", "target"]
    assert lines[3].split()[:6] == ["2.0000", "0.0000", "-2.0000", "2.0000", "0.0000", "-2.0000"]
    assert lines[5].startswith("final MSE ")
    steps = [line for line in result.stderr.splitlines() if line.startswith("step")]
    assert len(steps) == 11 and steps[0].startswith("step   0/300") and steps[-1].startswith("step 300/300")
    assert steps[-1].split(" w ")[1].split() == "1.00 0.00 -1.00 | 2.00 0.00 -2.00 | 1.00 0.00 -1.00".split()


def test_cli_json_and_plot(tmp_path):
    result = run(
        "train-filter",
        SAMPLES[0],
        "-t",
        "laplacian",
        "--steps",
        50,
        "--size",
        48,
        "--seed",
        3,
        "--plot",
        tmp_path / "loss.png",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["target"] == "laplacian" and doc["target_matrix"][1] == [1.0, -4.0, 1.0]
    assert doc["steps"] == 50 and [h["step"] for h in doc["history"]] == list(range(51))
    assert doc["mse"] == doc["history"][-1]["mse"] < doc["history"][0]["mse"]
    error = np.array(doc["learned"]) - np.array(doc["target_matrix"])
    assert np.allclose(doc["error"], error) and doc["max_abs_error"] == pytest.approx(np.abs(error).max())
    assert doc["lr"] == pytest.approx(1 / 9) and doc["seed"] == 3 and doc["crop"] == 48
    assert doc["plot"] == str(tmp_path / "loss.png")
    with Image.open(tmp_path / "loss.png") as im:
        assert im.format == "PNG" and im.size == PANEL


def test_cli_errors(tmp_path):
    result = run("train-filter", SAMPLES[0], "--target", "nope")
    assert result.exit_code == 1 and result.stderr.startswith("Error: kernel 'nope' is not known")
    result = run("train-filter", tmp_path / "missing.png", "--target", "sobel-x")
    assert result.exit_code == 1 and "missing.png: no such file" in result.stderr
    result = run("train-filter", SAMPLES[0], "--target", "sobel-x", "--plot", tmp_path / "no" / "c.png")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert run("train-filter", SAMPLES[0]).exit_code == 2  # --target is required
    helped = run("train-filter", "--help")
    assert helped.exit_code == 0 and "Examples:" in helped.stdout
