"""``convcli train --backend torch``: where it computes (device selection, tested on the CPU by
making PyTorch see a GPU or none), that its checkpoints serve every command that reads one, that
the same seed gives the same run, that its refusals come before anything is written, and that two
processes under torchrun (gloo, 127.0.0.1) train the digits as well as one."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from convcli.nn.checkpoint import load
from convcli.training import run as run_module
from convcli.training.placement import Placement

from conftest import REPO, failed, grey_png, run

SMALL = ["8x8x1", "conv:8,f=3,p=same", "bn", "relu", "maxpool:2", "flatten", "dropout:0.2", "fc:10"]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_without_torch_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    path = tmp_path / "m.npz"
    failed(run("train", *SMALL, "--backend", "torch", "-o", path), "--backend torch", 'pip install "convcli[torch]"')
    assert list(tmp_path.iterdir()) == []


# --- where it computes --------------------------------------------------------------------------


@pytest.mark.parametrize("gpu", [True, False])
def test_device_selection(gpu, torch, monkeypatch):
    from convcli.errors import TrainingError
    from convcli.training.torch_loop import place

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2 if gpu else 0)
    assert place("cpu") == Placement("torch", "cpu")
    assert place("auto").device == ("cuda:0" if gpu else "cpu")
    if gpu:
        assert place("cuda").device == "cuda:0"
        monkeypatch.setenv("WORLD_SIZE", "4")
        monkeypatch.setenv("RANK", "3")
        monkeypatch.setenv("LOCAL_RANK", "1")
        assert place("cuda") == Placement("torch", "cuda:1", processes=4, rank=3, local_rank=1)
        monkeypatch.setenv("LOCAL_RANK", "2")  # a third process on a machine with two GPUs
        with pytest.raises(TrainingError, match="no GPU of its own"):
            place("auto")
    else:
        with pytest.raises(TrainingError, match="--device cuda: PyTorch sees no CUDA GPU"):
            place("cuda")


def test_cuda_without_a_gpu_is_one_error_and_writes_nothing(tmp_path, torch, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["train", *SMALL, "-o", tmp_path / "m.npz", "--plot", tmp_path / "c.png", "--device", "cuda"]
    failed(run(*args, "--backend", "torch"), "--device cuda", "no CUDA GPU")
    failed(run(*args), "--device cuda needs --backend torch")
    assert list(tmp_path.iterdir()) == []


def test_numpy_under_torchrun_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    failed(run("train", *SMALL, "-o", tmp_path / "m.npz"), "torchrun started 2 processes", "--backend torch")
    assert list(tmp_path.iterdir()) == []


# --- one process --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("torch") / "digits.npz"
    result = run("train", *SMALL, "--epochs", 3, "--backend", "torch", "--device", "cpu", "-o", path, "--json")
    assert result.exit_code == 0, result.stderr
    return path, json.loads(result.stdout)


def test_json_states_the_backend_and_device(trained):
    path, doc = trained
    assert (doc["backend"], doc["device"], doc["processes"]) == ("torch", "cpu", 1)
    assert [h["epoch"] for h in doc["history"]] == [1, 2, 3] and doc["test_accuracy"] > 0.8
    assert doc["history"][2]["train_loss"] < doc["history"][0]["train_loss"]
    numpy_doc = json.loads(run("train", *SMALL, "--epochs", 1, "--json").stdout)
    assert (numpy_doc["backend"], numpy_doc["device"], numpy_doc["processes"]) == ("numpy", "cpu", 1)


def test_the_checkpoint_serves_every_command(trained, tmp_path):
    """evaluate computes with numpy what PyTorch measured when training ended; predict, features
    and export read the checkpoint as any other."""
    path, doc = trained
    ev = json.loads(run("evaluate", path, "--json").stdout)
    assert ev["accuracy"] == pytest.approx(doc["test_accuracy"]) and ev["confusion"] == doc["test"]["confusion"]
    saved = load(path)
    assert saved.meta.epoch == 3 and saved.meta.test_accuracy == doc["test_accuracy"]
    assert {k.rsplit(".", 1)[-1] for k in saved.optim} == {"m", "v", "steps"}  # Adam's, named as numpy's
    assert int(saved.optim["steps"]) == 3 * int(np.ceil(doc["data"]["sizes"]["train"] / 32))
    one = np.zeros((28, 28), np.uint8)
    one[4:24, 12:16] = 255
    digit = grey_png(tmp_path / "one.png", one)
    assert run("predict", path, digit, "--json").exit_code == 0
    assert run("features", path, digit, "-o", f"{tmp_path}/seen", "--json").exit_code == 0
    assert run("export", path, "-o", tmp_path / "m.onnx").exit_code == 0


def test_the_same_seed_gives_the_same_run(trained):
    _, doc = trained
    again = json.loads(run("train", *SMALL, "--epochs", 3, "--backend", "torch", "--json").stdout)
    assert again["history"] == [
        {**h, "seconds": a["seconds"], "images_per_second": a["images_per_second"]}
        for h, a in zip(doc["history"], again["history"])
    ]
    assert again["test"] == doc["test"]


def test_resume_on_either_backend(trained, tmp_path):
    path, _ = trained
    for backend, epochs in (("numpy", 4), ("torch", 5)):
        result = run("train", "--resume", path, "-o", tmp_path / "more.npz", "--epochs", epochs, "--backend", backend)
        assert result.exit_code == 0, result.stderr
        path = tmp_path / "more.npz"
        assert load(path).meta.epoch == epochs


# --- several processes --------------------------------------------------------------------------


def test_a_process_other_than_the_first_prints_and_writes_nothing(tmp_path, torch, monkeypatch):
    """Rank 1 of 2, its process group stood in for: it trains its share, and says and writes
    nothing (rank 0 does)."""
    from convcli.training import torch_loop

    monkeypatch.setattr(run_module, "place", lambda r: Placement("torch", "cpu", processes=2, rank=1, local_rank=1))
    monkeypatch.setattr(torch_loop.TorchTrainer, "_process_group", lambda self: contextlib.nullcontext(self.net))
    monkeypatch.setattr(torch_loop.TorchTrainer, "_summed", lambda self, *totals: totals)
    result = run("train", *SMALL, "--epochs", 1, "-o", tmp_path / "m.npz", "--plot", tmp_path / "c.png")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert list(tmp_path.iterdir()) == []


def test_the_batch_must_split_evenly_over_the_processes(tmp_path, torch, monkeypatch):
    monkeypatch.setattr(run_module, "place", lambda r: Placement("torch", "cpu", processes=2))
    result = run("train", *SMALL, "--batch-size", 33, "-o", tmp_path / "m.npz")
    failed(result, "--batch-size 33 does not split evenly over 2 processes", "a multiple of 2")
    assert list(tmp_path.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(*launcher: str, cwd, epochs: int = 8) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [*launcher, "-m", "convcli", "train", "--backend", "torch", "--epochs", str(epochs), "-o", "digits.npz"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def _torchrun(cwd, epochs: int) -> subprocess.CompletedProcess:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    return _train(*torchrun, cwd=cwd, epochs=epochs)


def test_two_processes_under_torchrun_train_as_well_as_one(tmp_path, torch):
    """``torchrun --nproc-per-node 2`` (gloo on 127.0.0.1) on the built-in digits: one table
    on stdout and one line per epoch on stderr (rank 0's), one checkpoint, and a test accuracy
    within a point of one process's."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    single = _train(sys.executable, cwd=one)
    assert single.returncode == 0, single.stderr
    both = _torchrun(two, 8)
    assert both.returncode == 0, both.stderr
    assert both.stdout.count("Summary") == 1 and both.stderr.count("epoch 8/8  lr") == 1, both.stderr
    assert "trained by torch on cpu, 2 processes" in both.stderr
    assert sorted(p.name for p in two.iterdir()) == ["digits.npz"]
    accuracy = [load(folder / "digits.npz").meta.test_accuracy for folder in (one, two)]
    assert abs(accuracy[0] - accuracy[1]) <= 0.01, accuracy
    assert min(accuracy) > 0.95, accuracy


def test_two_processes_with_the_same_seed_give_the_same_run(tmp_path, torch):
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        done = _torchrun(tmp_path / name, 2)
        assert done.returncode == 0, done.stderr
        runs.append(load(tmp_path / name / "digits.npz"))
    a, b = runs
    assert [(h.train_loss, h.val_loss) for h in a.meta.history] == [(h.train_loss, h.val_loss) for h in b.meta.history]
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)
