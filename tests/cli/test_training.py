"""train, evaluate and predict through the CLI: results, checkpoints, and every error as one
'Error: ...' line on stderr with exit code 1 and nothing overwritten."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.nn.checkpoint import load
from convcli.training.datasets import resolve_data

from conftest import failed, grey_png, run

SMALL = ["8x8x1", "conv:8,f=3,p=same", "relu", "maxpool:2", "flatten", "fc:10"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained for 3 epochs on the digits, and its --json output."""
    path = tmp_path_factory.mktemp("model") / "digits.npz"
    result = run("train", *SMALL, "--epochs", 3, "--schedule", "none", "-o", path, "--json")
    assert result.exit_code == 0, result.stderr
    return path, json.loads(result.stdout)


def test_train_json(trained):
    path, doc = trained
    assert [h["epoch"] for h in doc["history"]] == [1, 2, 3]
    assert 0.8 < doc["test_accuracy"] <= 1 and doc["test"]["n"] == 359
    assert doc["spec"].startswith("8x8x1 conv:8") and doc["params"] == 8 * 9 + 8 + 128 * 10 + 10
    assert doc["data"]["data"] == "digits" and doc["data"]["class_names"] == list("0123456789")
    assert doc["history"][2]["train_loss"] < doc["history"][0]["train_loss"]
    assert path.is_file() and doc["checkpoint"] == str(path)


def test_summary_compares_networks(trained):
    """params and MACs as `params`/`flops` count them; seconds per epoch the mean of the history."""
    _, doc = trained
    report = analyse(parse_words(SMALL))
    assert doc["params"] == report.total("params") and doc["macs"] == report.total("macs") == 8 * 9 * 64 + 1280
    assert doc["seconds_per_epoch"] == pytest.approx(np.mean([h["seconds"] for h in doc["history"]]))
    assert doc["name"] is None and doc["plot"] is None
    table = run("train", "mnist-inception", "--data", "digits", "--epochs", 1)
    assert "8x8x1 but the network's input is 28x28x1" in table.stderr  # a preset is a SPEC like any other


def test_default_run_reaches_97_percent_on_the_built_in_digits():
    # the target: convcli train with no arguments, >= 97% test accuracy (timing: README)
    doc = json.loads(run("train", "--json").stdout)
    assert doc["name"] == "digits-cnn" and len(doc["history"]) == 20
    assert doc["test_accuracy"] >= 0.97


def test_table_output_ends_with_the_summary(tmp_path):
    result = run("train", "--epochs", 1, "--plot", tmp_path / "curve.png")
    assert result.exit_code == 0, result.stderr
    summary = result.stdout.splitlines()[-4:]
    assert summary[0] == "Summary" and summary[1].split() == [
        "network",
        "test",
        "acc",
        "params",
        "MACs/image",
        "s/epoch",
        "epochs",
        "peak",
        "MiB",
        "(est.)",
        "measured",
    ]
    assert summary[2].split()[0] == "digits-cnn" and summary[2].split()[2:4] == ["38,442", "913"]
    assert summary[3].startswith("peak: a training step at batch 32, float32")
    assert "38,442 parameters, 913 K MACs per image, 1,295 training images" in result.stderr
    assert f"curves in {tmp_path / 'curve.png'}" in result.stderr


def test_plot_is_redrawn_every_epoch_and_kept_on_resume(tmp_path):
    from convcli.training.curves import PANEL

    plot, model = tmp_path / "curve.png", tmp_path / "m.npz"
    assert run("train", *SMALL, "--epochs", 2, "-o", model, "--plot", plot).exit_code == 0
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.size == (2 * PANEL[0], PANEL[1])
        two = np.asarray(im.convert("RGB"))
    result = run("train", "--resume", model, "--epochs", 3, "--plot", plot, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["plot"] == str(plot)
    with Image.open(plot) as im:
        assert not np.array_equal(np.asarray(im.convert("RGB")), two)  # three epochs drawn now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "m.npz"]


@pytest.mark.parametrize(
    "plot, fragment", [("curve.jpg", "end the name in .png"), ("missing/curve.png", "does not exist")]
)
def test_plot_errors_come_before_training(tmp_path, plot, fragment):
    failed(run("train", *SMALL, "-o", tmp_path / "m.npz", "--plot", tmp_path / plot), fragment)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_holds_what_a_model_needs(trained):
    path, doc = trained
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert "param/0.w" in z.files
    splits = resolve_data("digits", validation=0.1, seed=0)
    assert meta["data"]["mean"] == pytest.approx(splits.mean) and meta["data"]["std"] == pytest.approx(splits.std)
    assert meta["convcli_version"] and meta["epoch"] == 3 and len(meta["history"]) == 3
    assert meta["test_accuracy"] == doc["test_accuracy"]


def test_evaluate_matches_training(trained):
    path, doc = trained
    result = run("evaluate", path, "--json")
    assert result.exit_code == 0, result.stderr
    ev = json.loads(result.stdout)
    assert ev["accuracy"] == pytest.approx(doc["test_accuracy"])
    assert ev["confusion"] == doc["test"]["confusion"]
    assert [c["support"] for c in ev["per_class"]] == [sum(row) for row in ev["confusion"]]
    table = run("evaluate", path)
    assert table.exit_code == 0 and "precision" in table.stdout and "Confusion matrix" in table.stdout


def test_predict_a_digit_image(trained, tmp_path):
    path, _ = trained
    digit = resolve_data("digits").test.images[0, 0]  # 8x8, white on black
    photo = Image.new("L", (100, 90), 255)  # dark ink on white paper
    photo.paste(Image.fromarray(((1 - digit) * 255).astype(np.uint8)).resize((64, 64)), (20, 10))
    photo.save(tmp_path / "d.png")
    result = run("predict", path, tmp_path / "d.png", "--top", 3, "--json")
    assert result.exit_code == 0, result.stderr
    [item] = json.loads(result.stdout)
    probs = [t["probability"] for t in item["top"]]
    assert item["file"] == str(tmp_path / "d.png") and item["prediction"] == item["top"][0]["class"]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    table = run("predict", path, tmp_path / "d.png")
    assert table.exit_code == 0 and item["prediction"] in table.stdout


def test_resume_continues_exactly(tmp_path):
    # with dropout, whose masks must be drawn as an uninterrupted run draws them
    common = [
        *SMALL[:-1],
        "dropout:0.3",
        "fc:10",
        "--schedule",
        "none",
        "--optimizer",
        "momentum",
        "--lr",
        "0.05",
        "--json",
    ]
    straight = json.loads(run("train", *common, "--epochs", 2, "-o", tmp_path / "a.npz").stdout)
    assert run("train", *common, "--epochs", 1, "-o", tmp_path / "b.npz").exit_code == 0
    resumed = run("train", "--resume", tmp_path / "b.npz", "--epochs", 2, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert [h["epoch"] for h in doc["history"]] == [1, 2]
    assert doc["test_accuracy"] == straight["test_accuracy"]
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        for name in ("param/0.w", "param/5.w"):
            np.testing.assert_array_equal(a[name], b[name])


def unchanged(path):
    before = path.read_bytes()
    return lambda: path.read_bytes() == before


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["nosuchnet"], ["nosuchnet"]),
        (["lenet5-1998"], ["subsample", "cannot be trained"]),
        (["224x224x3", "conv:8,f=4,s=4", "relu", "gap", "flatten", "fc:10"], ["224x224x3", "8x8x1"]),
        (["vgg16"], ["224x224x3 conv:64,p=1", "9.2 GiB of memory", "activations of 64 images"]),
        (["28x28x1", "conv:4", "relu", "flatten", "fc:10"], ["8x8x1", "28x28x1"]),
        ([*SMALL[:-1], "fc:7"], ["7 outputs", "10 classes"]),
        ([*SMALL, "--lr", "0"], ["--lr 0"]),
        ([*SMALL, "--lr", "100"], ["--lr 100"]),
        ([*SMALL, "--batch-size", "0"], ["--batch-size 0"]),
        ([*SMALL, "--epochs", "0"], ["--epochs 0"]),
    ],
)
def test_train_errors_leave_checkpoint_alone(trained, args, fragments, monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "1")  # the memory estimate of one worker (more with the pool)
    path, _ = trained
    same = unchanged(path)
    failed(run("train", *args, "-o", path), *fragments)
    assert same()


def test_resume_with_another_spec_is_refused(trained):
    path, _ = trained
    same = unchanged(path)
    failed(
        run("train", "8x8x1", "conv:4", "relu", "flatten", "fc:10", "--resume", path, "--epochs", 5),
        "is not the network in",
    )
    failed(run("train", "--resume", path, "--epochs", 3), "already been trained for 3 epochs")
    assert same()


def test_data_and_output_errors(tmp_path, trained):
    (tmp_path / "empty").mkdir()
    failed(run("train", *SMALL, "--data", tmp_path / "empty"), "empty directory")
    failed(run("train", *SMALL, "-o", tmp_path), "is a directory")
    failed(run("train", *SMALL, "-o", tmp_path / "missing" / "m.npz"), "does not exist")


@pytest.mark.parametrize("command", [["evaluate"], ["predict"], ["train", "--resume"]])
def test_corrupt_and_foreign_checkpoints(tmp_path, command):
    (tmp_path / "bad.npz").write_bytes(b"\x00garbage")
    np.savez(tmp_path / "other.npz", weights=np.zeros(2))
    Image.new("L", (10, 10)).save(tmp_path / "x.png")
    extra = [tmp_path / "x.png"] if command == ["predict"] else []
    failed(run(*command, tmp_path / "bad.npz", *extra), "not a readable .npz")
    failed(run(*command, tmp_path / "other.npz", *extra), "not a convcli checkpoint")
    assert (tmp_path / "bad.npz").read_bytes() == b"\x00garbage"


def test_predict_errors(trained, tmp_path):
    path, _ = trained
    failed(run("predict", path, tmp_path / "nope.png"), "no such file")
    failed(run("predict", path, tmp_path / "nope.png", "--top", 0), "--top 0")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout


def test_interrupt_keeps_the_last_complete_epoch(tmp_path):
    from convcli.training.run import TrainRequest, train

    class StopInEpochTwo:
        epochs_done = 0

        def download(self, *args):
            pass

        def start(self, *args):
            pass

        def batch(self, done, total, loss, accuracy):
            if self.epochs_done == 1 and done > total // 2:
                raise KeyboardInterrupt

        def epoch(self, record):
            self.epochs_done = record.epoch

    path = tmp_path / "m.npz"
    result = train(TrainRequest(words=tuple(SMALL), epochs=3, output=path), StopInEpochTwo())
    assert result.interrupted and result.test is None and len(result.history) == 1
    assert load(path).meta.epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def digits_npz(path, constant=False):
    """A Keras-style .npz of 8x8 digits (or of images all one grey level)."""
    d = resolve_data("digits")
    x = (np.full_like(d.train.images, 0.5) if constant else d.train.images)[:, 0]
    x_test = (np.full_like(d.test.images, 0.5) if constant else d.test.images)[:, 0]
    np.savez(path, x_train=x, y_train=d.train.labels, x_test=x_test, y_test=d.test.labels)
    return path


@pytest.mark.parametrize("name", ["k.npz", "link.npz", "hard.npz"])
def test_output_never_overwrites_the_data(tmp_path, name):
    data = digits_npz(tmp_path / "k.npz")
    (tmp_path / "link.npz").symlink_to(data)
    os.link(data, tmp_path / "hard.npz")
    same = unchanged(data)
    failed(run("train", *SMALL, "--data", data, "-o", tmp_path / name, "--epochs", 1), "--output", "is also an input")
    assert same() and sorted(p.name for p in tmp_path.iterdir()) == ["hard.npz", "k.npz", "link.npz"]


def test_plot_never_overwrites_an_input_or_the_checkpoint(tmp_path, trained):
    path, _ = trained
    folder = tmp_path / "folder"
    (folder / "3").mkdir(parents=True)
    image = grey_png(folder / "3" / "a.png", np.zeros((8, 8)))
    same, kept = unchanged(image), unchanged(path)
    failed(run("train", *SMALL, "--data", folder, "--plot", image), "--plot", "is also an input")
    failed(run("train", *SMALL, "-o", tmp_path / "m.npz", "--plot", tmp_path / "m.npz"), "another output")
    failed(run("train", "--resume", path, "--epochs", 5, "--plot", path), "--plot", "is also an input")
    assert same() and kept() and sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_resume_writes_over_its_own_checkpoint(tmp_path, trained):
    path = tmp_path / "m.npz"
    path.write_bytes(trained[0].read_bytes())
    result = run("train", "--resume", path, "-o", path, "--epochs", 4, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["checkpoint"] == str(path) and load(path).meta.epoch == 4


def test_unwritable_output_directory_is_refused_before_training(tmp_path, monkeypatch):
    # root writes anywhere, so answer as a read-only directory does
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    failed(run("train", *SMALL, "-o", tmp_path / "m.npz"), "--output", "is not writable")
    failed(run("train", *SMALL, "--plot", tmp_path / "c.png"), "--plot", "is not writable")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["evaluate"], ["predict"], ["train", "--resume"]])
def test_a_directory_given_as_checkpoint(tmp_path, command):
    extra = [grey_png(tmp_path / "x.png", np.zeros((8, 8)))] if command == ["predict"] else []
    failed(run(*command, tmp_path, *extra), f"checkpoint {tmp_path} is a directory")


def test_nan_weights_are_refused(tmp_path, trained):
    with np.load(trained[0]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/0.w"][0, 0, 1, 1] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    grey_png(tmp_path / "x.png", np.eye(8) * 255)
    for command in (["evaluate", tmp_path / "nan.npz"], ["predict", tmp_path / "nan.npz", tmp_path / "x.png"]):
        failed(run(*command), "parameter '0.w'", "1 NaN or infinite value")
    failed(run("train", "--resume", tmp_path / "nan.npz", "--epochs", 5), "parameter '0.w'")


def test_a_bad_mirror_is_named(tmp_path, monkeypatch):
    failed(run("train", "--data", "mnist", "--data-dir", tmp_path, "--mirror", "notaurl"), "--mirror notaurl")
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", "notaurl")
    failed(run("train", "--data", "mnist", "--data-dir", tmp_path), "$CONVCLI_MNIST_MIRROR=notaurl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a warning would break the one Error line
@pytest.mark.parametrize(
    "spec",
    [
        # batch norm keeps the loss finite while the weights run away: no error at all before
        ["8x8x1", "conv:8,f=3,p=same", "bn", "relu", "conv:8,f=3,p=same", "bn", "relu", "flatten", "fc:10"],
        ["8x8x1", "conv:8,f=3,p=same", "relu", "flatten", "fc:10"],
    ],
)
def test_a_diverging_loss_is_one_error_line(spec):
    failed(
        run("train", *spec, "--lr", 10, "--optimizer", "momentum", "--epochs", 2, "--json"),
        "diverged in epoch 1",
        "try a lower learning rate, e.g. --lr 1",
    )


def test_constant_images_are_blamed_on_the_data(tmp_path):
    data = digits_npz(tmp_path / "flat.npz", constant=True)
    failed(run("train", *SMALL, "--data", data), f"--data {data}", "same flat grey level (0.5")


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (["8x8x1", "flatten", "fc:100000000"], "6,500,000,000 parameters"),
        (["28x28x1", "flatten", "fc:100000000"], "78,500,000,000 parameters"),  # before any data
        (["2048x2048x1", "conv:8,f=3,p=same", "relu", "maxpool:2", "gap", "flatten", "fc:10"], "activations of"),
    ],
)
def test_sizes_are_checked_before_allocating(spec, fragment):
    failed(run("train", *spec), "GiB of memory", fragment)
