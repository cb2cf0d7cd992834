"""``convcli features`` end to end on checkpoints written by ``convcli train``: the files, the
JSON, the same preparation as ``predict``, every digit network, and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from convcli.images.kernels import KERNELS
from convcli.networks.report import analyse, walk
from convcli.networks.zoo import get
from convcli.nn import checkpoint as ckpt

from conftest import failed, run

SMALL = ["8x8x1", "conv:4,f=3,p=same", "relu", "maxpool:2", "flatten", "fc:10"]
KINDS = ("filters", "maps", "gradcam", "heat_map", "saliency")


def seven(path, size=(120, 90)):
    """A dark '7' off-centre on light paper."""
    im = Image.new("L", size, 235)
    ImageDraw.Draw(im).line([(50, 15), (100, 15), (70, 80)], fill=25, width=7)
    im.save(path)
    return path


def tiny_data(path, size):
    """A Keras-style .npz of 30 training and 10 test 'digits' of ``size`` x ``size``: a bright
    square whose place is the class (as tests/cli/test_mnist.py makes them)."""
    rng = np.random.default_rng(0)

    def images(labels):
        x = rng.integers(0, 30, (len(labels), size, size)).astype(np.uint8)
        cell = size // 5
        for k, label in enumerate(labels):
            r, c = divmod(int(label), 4)
            x[k, 1 + cell * r : 1 + cell * r + cell, 1 + cell * c : 1 + cell * c + cell] = 255
        return x

    train, test = np.arange(30) % 10, np.arange(10) % 10
    np.savez(path, x_train=images(train), y_train=train, x_test=images(test), y_test=test)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    model = folder / "small.npz"
    result = run("train", *SMALL, "--data", tiny_data(folder / "d8.npz", 8), "--epochs", 1, "-o", model, "--json")
    assert result.exit_code == 0, result.stderr
    return model, seven(folder / "seven.png")


def test_end_to_end(trained, tmp_path):
    model, image = trained
    result = run("features", model, image, "-o", tmp_path / "s", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    names = {kind: [f"s-{suffix}"] for kind, suffix in zip(KINDS, ("filters.png", "conv1.png", "gradcam.png"))}
    names.update(heat_map=["s-gradcam.npy"], saliency=["s-saliency.npy"])
    files = {kind: [p] if isinstance(p, str) else p for kind, p in doc["files"].items()}
    assert {kind: [p.rsplit("/", 1)[1] for p in paths] for kind, paths in files.items()} == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for paths in names.values() for n in paths)
    for kind in ("filters", "maps", "gradcam"):
        with Image.open(files[kind][0]) as im:
            assert im.format == "PNG" and im.width >= 500
    heat = np.load(doc["files"]["heat_map"])
    assert heat.shape == (8, 8) and heat.dtype == np.float32 and heat.min() >= 0
    assert np.load(doc["files"]["saliency"]).shape == (8, 8)
    assert doc["model"] == str(model) and doc["image"] == str(image)
    assert len(doc["first_conv"]["filters"]) == 4 and doc["first_conv"]["layer"] == "conv:4,f=3,p=same"
    [layer] = doc["layers"]
    assert layer["shape"] == [8, 8, 4] and layer["folded"] == ["relu"] and 0 <= layer["dead"] <= 1
    grad = doc["gradcam"]
    assert grad["class"] == doc["prediction"]["class"] and grad["map_shape"] == [8, 8]
    assert grad["image_size"] == {"width": 120, "height": 90}
    if grad["peak"] is not None:
        assert 0 <= grad["peak"]["x"] < 120 and 0 <= grad["peak"]["y"] < 90
        assert heat[grad["peak_input"]["y"], grad["peak_input"]["x"]] == heat.max()


def test_the_image_is_prepared_as_predict_prepares_it(trained, tmp_path):
    model, image = trained
    doc = json.loads(run("features", model, image, "-o", tmp_path / "s", "--json").stdout)
    [predicted] = json.loads(run("predict", model, image, "--top", 3, "--json").stdout)
    assert predicted["top"] == doc["top"]


def test_folder_layer_class_and_table(trained, tmp_path):
    model, image = trained
    result = run("features", model, image, "-o", tmp_path, "--layer", 1, "--class", "3")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "seven-conv1.png",
        "seven-filters.png",
        "seven-gradcam.npy",
        "seven-gradcam.png",
        "seven-saliency.npy",
    ]
    assert "Grad-CAM for class 3" in result.stdout and "nearest kernel" in result.stdout
    assert result.stderr.count("wrote ") == 5


def test_a_sobel_x_first_filter_is_reported_as_sobel_x(trained, tmp_path):
    model, image = trained
    saved = ckpt.load(model)
    state = dict(saved.state)
    state["0.w"] = state["0.w"].copy()
    state["0.w"][0, 0] = KERNELS["sobel-x"].array()
    path = ckpt.save(tmp_path / "sobel.npz", state, saved.optim, saved.meta)
    doc = json.loads(run("features", path, image, "-o", tmp_path / "s", "--json").stdout)
    first = doc["first_conv"]["filters"][0]
    assert (first["nearest"], first["sign"], first["distance"], first["kernel_shape"]) == ("sobel-x", 1, 0, [3, 3])


DIGIT_NETWORKS = ("digits-cnn", "mnist-cnn", "mnist-resnet", "mnist-mobilenet", "mnist-inception", "lenet5")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return {8: tiny_data(folder / "d8.npz", 8), 28: tiny_data(folder / "d28.npz", 28)}


@pytest.mark.parametrize("name", DIGIT_NETWORKS)
def test_every_digit_network_that_train_writes(name, data, trained, tmp_path):
    _, image = trained
    size = 8 if name == "digits-cnn" else 28
    model = tmp_path / f"{name}.npz"
    result = run("train", name, "--data", data[size], "--epochs", 1, "--batch-size", 16, "-o", model, "--json")
    assert result.exit_code == 0, result.stderr
    result = run("features", model, image, "-o", tmp_path / name, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    report = analyse(get(name))
    convs = [info for info in walk(report.layers) if info.kind in ("conv", "dwconv")]
    assert [layer["layer"] for layer in doc["layers"]] == [info.word for info in convs]
    assert [tuple(layer["shape"]) for layer in doc["layers"]] == [info.out_shape for info in convs]
    assert len(doc["files"]["maps"]) == len(convs)
    side = report.input_shape[0]
    assert np.load(doc["files"]["heat_map"]).shape == (side, side)
    for path in (p for paths in doc["files"].values() for p in ([paths] if isinstance(paths, str) else paths)):
        assert (tmp_path / path.rsplit("/", 1)[1]).is_file()


def test_errors_leave_no_file(trained, tmp_path):
    model, image = trained
    failed(run("features", model, image, "-o", tmp_path / "s", "--layer", 2), "--layer 2", "1 convolutions")
    failed(run("features", model, image, "-o", tmp_path / "s", "--class", "x"), "--class 'x'", "0, 1, 2")
    failed(run("features", model, tmp_path / "none.png", "-o", tmp_path / "s"), "no such file")
    failed(run("features", model, image, "-o", tmp_path / "missing" / "s"), "does not exist")
    failed(run("features", tmp_path / "none.npz", image, "-o", tmp_path / "s"), "no such file")
    Image.new("L", (20, 20), 128).save(tmp_path / "flat.png")
    failed(run("features", model, tmp_path / "flat.png", "-o", tmp_path / "s"), "no digit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.png"]


def test_an_input_is_never_overwritten(trained, tmp_path):
    model, image = trained
    victim = tmp_path / "s-gradcam.png"
    victim.write_bytes(image.read_bytes())
    before = victim.read_bytes()
    failed(run("features", model, victim, "-o", tmp_path / "s"), "is also an input")
    assert victim.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s-gradcam.png"]


def test_a_network_without_convolutions(data, tmp_path):
    model = tmp_path / "fc.npz"
    assert run("train", "8x8x1", "flatten", "fc:10", "--data", data[8], "--epochs", 1, "-o", model).exit_code == 0
    failed(run("features", model, seven(tmp_path / "7.png"), "-o", tmp_path / "s"), "no convolution")


def test_help():
    result = run("features", "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout and "Grad-CAM" in result.stdout


def test_a_folder_named_with_a_slash_is_made(tmp_path, trained):
    """``-o out/`` (the README's example) puts the files in a new folder out/, named after the image."""
    model, image = trained
    result = run("features", model, image, "-o", f"{tmp_path / 'out'}/")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / f"{image.stem}-filters.png").is_file()
    assert not list(tmp_path.glob("out-*"))
