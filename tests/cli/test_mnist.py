"""``convcli train --data mnist`` end to end: the download from a mirror on 127.0.0.1 (small
synthetic IDX files, served as tests/test_download.py does), its progress on stderr, the cache,
lenet5's default recipe, and the message that says how to place the files when the mirror is
unreachable."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json

import numpy as np
import pytest

from convcli.training import datasets, download

from conftest import closed_port_url, idx_file, run, serve

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(scope="module")
def mirror(server):  # noqa: F811
    """100 training and 20 test 28x28 'digits' (a bright square whose place is the class),
    gzipped, on the test server; returns the URL and the md5 table of the decompressed files."""
    rng = np.random.default_rng(0)

    def images(labels):
        x = rng.integers(0, 40, (len(labels), 28, 28))
        for k, label in enumerate(labels):
            r, c = divmod(int(label), 4)
            x[k, 4 + 6 * r : 9 + 6 * r, 4 + 5 * c : 9 + 5 * c] = 255
        return x

    train, test = np.arange(100) % 10, np.arange(20) % 10
    raw = dict(zip(FILES, (idx_file(images(train)), idx_file(train), idx_file(images(test)), idx_file(test))))
    url = serve(server, "cli-mnist", {name: gzip.compress(data) for name, data in raw.items()})
    return url, {name: hashlib.md5(data).hexdigest() for name, data in raw.items()}, raw


@pytest.fixture
def environment(mirror, monkeypatch, tmp_path):
    url, md5, _ = mirror
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", url)
    monkeypatch.setenv("CONVCLI_DATA", str(tmp_path))
    # the real download, checked against the synthetic files' md5s instead of MNIST's
    monkeypatch.setattr(datasets, "fetch_mnist", functools.partial(download.fetch_mnist, checksums=md5))
    return tmp_path


def test_download_progress_on_stderr_then_cache(environment, server):  # noqa: F811
    first = run("train", "lenet5", "--data", "mnist", "--epochs", 1, "-o", environment / "m.npz", "--json")
    assert first.exit_code == 0, first.stderr
    lines = first.stderr.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        line for name in FILES for line in (f"downloading {name}", f"downloaded {name}")
    ]
    assert lines[0].endswith(" MB)")
    doc = json.loads(first.stdout)  # stdout is the JSON alone
    assert doc["data"]["data"] == "mnist" and doc["data"]["sizes"] == {"train": 90, "validation": 10, "test": 20}
    assert sorted(p.name for p in (environment / "mnist").iterdir()) == sorted(FILES)
    # lenet5's recipe (convcli.training.recipes.RECIPES) on 28x28 data padded to 32x32
    assert doc["name"] == "lenet5" and doc["macs"] == 416_520
    assert {k: doc["config"][k] for k in ("optimizer", "lr", "schedule", "weight_decay", "epochs", "batch_size")} == {
        "optimizer": "momentum",
        "lr": 0.01,
        "schedule": "cosine",
        "weight_decay": 5e-4,
        "epochs": 1,
        "batch_size": 32,
    }

    before = len(server.requests)
    again = run("evaluate", environment / "m.npz", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.stderr == "" and len(server.requests) == before  # the cache, no network
    assert json.loads(again.stdout)["accuracy"] == doc["test_accuracy"]


def test_unreachable_mirror_says_how_to_place_the_files(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", closed_port_url())
    monkeypatch.setenv("CONVCLI_DATA", str(tmp_path))
    result = run("train", "lenet5", "--data", "mnist", "--epochs", 1)
    assert result.exit_code == 1 and result.stdout == ""
    message = result.stderr
    assert message.startswith("Error: cannot reach http://127.0.0.1:") and message.count("\n") == 1
    assert "to install MNIST by hand" in message and str(tmp_path / "mnist") in message
    assert all(name in message for name in FILES) and "--data DIR" in message
    assert list((tmp_path / "mnist").iterdir()) == []


def test_mirror_option_wins_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", "http://127.0.0.1:1/not-this/")
    url = closed_port_url()
    result = run("train", "lenet5", "--data", "mnist", "--data-dir", tmp_path, "--mirror", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach {url.rstrip('/')}/") and "not-this" not in result.stderr


@pytest.mark.parametrize("name", ["mnist-cnn", "mnist-resnet", "mnist-mobilenet", "mnist-inception", "lenet5"])
def test_each_family_trains_and_reports_its_costs(mirror, tmp_path, name):
    """Every 28x28 network by name, on a directory of IDX files; the summary's params and MACs
    are what 'convcli params' and 'flops' count for the same spec."""
    from convcli.networks.report import analyse
    from convcli.training.run import load_spec

    for file, data in mirror[2].items():
        (tmp_path / file.removesuffix(".gz")).write_bytes(data)
    result = run("train", name, "--data", tmp_path, "--epochs", 1, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    report = analyse(load_spec((name,)))
    assert (doc["name"], doc["params"], doc["macs"]) == (name, report.total("params"), report.total("macs"))
    assert doc["seconds_per_epoch"] == doc["history"][0]["seconds"] > 0 and 0 <= doc["test_accuracy"] <= 1
