"""The digit networks' inference on MNIST's 10,000 test images: ``convcli evaluate`` against PyTorch
in evaluation mode on the CPU.

Each network (``lenet5`` and the zoo's ``mnist-*`` families, `convcli.networks.zoo.DIGIT_NETWORKS`)
is trained briefly by convcli (``--train-images``, default 2,000, one epoch: real batch norm
statistics and predictions that are not ties) and saved with the checkpoint writer. Then, on the
same normalised test images:

- *convcli*: what ``convcli evaluate`` runs, `convcli.training.trained.load_inference_model`
  (batch norm folded) and `convcli.training.loop.predict_logits` (its batch:
  `convcli.nn.memory.inference_batch`);
- *torch*: the module `convcli.interop.torch_model.build_torch_model` builds from the same report,
  the same weights, ``eval()`` and ``no_grad``, batches of 500;
- *command*: the whole ``convcli evaluate CHECKPOINT --data DIR --json`` in a fresh interpreter
  (start-up, reading the checkpoint and MNIST, evaluation), wall time.

The in-process forwards run ``--rounds`` times each (default 3), alternated, and the best round
counts: the machine is shared, and its speed drifts. Prints images per second (wall clock, and
CPU time: with one thread, CPU time is what another process's load changes least), the ratios
convcli / torch (target >= 1), and both frameworks' test accuracy, which must agree.
``--threads`` limits numpy's OpenBLAS (threadpoolctl) and torch (``set_num_threads``) alike,
and the command's OpenBLAS through ``OPENBLAS_NUM_THREADS``. With more threads than idle cores
the times measure the scheduler: on a 2-core machine at load average 3.5, every OpenBLAS product
of a LeNet-5 layer took 8 ms with 2 threads (0.1 to 0.7 ms with one), and both frameworks ran
up to 10x slower than with one thread; compare 2-thread runs only on an idle machine.

    python benchmarks/bench_evaluate.py --data /work/shared/data/mnist              # every network
    python benchmarks/bench_evaluate.py --data DIR --net mnist-resnet --threads 1
    python benchmarks/bench_evaluate.py --data DIR --batches      # convcli's img/s by batch size
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from convcli.interop.torch_model import build_torch_model, load_weights
from convcli.networks.zoo import DIGIT_NETWORKS
from convcli.nn.memory import inference_batch

from machine import machine_line

NETWORKS = ("lenet5", *(name for name in DIGIT_NETWORKS if name.startswith("mnist-")))
TORCH_BATCH = 500
BATCHES = (8, 16, 32, 64, 128, 256, 512)


def checkpoint(net: str, data: str, images: int, folder: Path) -> Path:
    """``net`` trained by convcli for one epoch on the first ``images`` training images, saved
    as ``convcli train -o`` saves it."""
    from convcli.networks.zoo import get
    from convcli.nn import checkpoint as ckpt
    from convcli.nn.checkpoint import Metadata
    from convcli.nn.model import build_model
    from convcli.nn.optim import make_optimizer
    from convcli.training.datasets import resolve_data
    from convcli.training.loop import TrainConfig, fit, prepare_images
    from convcli.training.run import data_info

    network = get(net)
    splits = resolve_data(data, validation=0.0, seed=0)
    config = TrainConfig(epochs=1, batch_size=64, optimizer="momentum", lr=0.01, schedule="none")
    model = build_model(analyse_of(net), seed=0)
    optimizer = make_optimizer("momentum", model, config.lr, 0.0, config.momentum)
    x = prepare_images(splits.train.images[:images], network.input, splits.mean, splits.std)
    fit(model, optimizer, x, splits.train.labels[:images], config)
    info = data_info(data, splits, None)
    path = folder / f"{net}.npz"
    ckpt.save(path, model.state_dict(), optimizer.state_dict(), Metadata(network, config, info, epoch=1))
    return path


def test_images(path: Path, data: str):
    """The prepared test images and labels, as ``convcli evaluate`` prepares them."""
    from convcli.nn import checkpoint as ckpt
    from convcli.training.datasets import resolve_data
    from convcli.training.loop import prepare_images

    saved = ckpt.load(path)
    info = saved.meta.data
    splits = resolve_data(data, validation=info.validation_fraction, seed=info.seed)
    x = prepare_images(splits.test.images, saved.network.input, info.mean, info.std)
    return x, splits.test.labels


def timed(run) -> tuple[float, float, np.ndarray]:
    """(wall seconds, CPU seconds, result) of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def convcli_run(path: Path, x: np.ndarray, batch: int | None = None):
    from convcli.training.loop import predict_logits
    from convcli.training.trained import load_inference_model

    return lambda: predict_logits(load_inference_model(path)[0], x, batch)


def torch_run(path: Path, x: np.ndarray):
    import torch

    from convcli.training.trained import load_model

    model = load_model(path)[0]
    module = build_torch_model(model.report, seed=0)
    load_weights(module, model)
    module.eval()
    xs = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            return torch.cat([module(xs[b : b + TORCH_BATCH]) for b in range(0, len(xs), TORCH_BATCH)]).numpy()

    return run


def command(path: Path, data: str, threads: int) -> tuple[float, dict]:
    """Wall seconds of ``convcli evaluate PATH --data DATA --json`` and its JSON."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "convcli", "evaluate", str(path), "--data", data, "--json"]
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", help="mnist, or a directory of the MNIST IDX files")
    parser.add_argument("--net", choices=NETWORKS, action="append", help="a network (repeatable; default all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="forwards of each framework, alternated; the best counts")
    parser.add_argument("--train-images", type=int, default=2000, help="training images of the one epoch")
    parser.add_argument("--batches", action="store_true", help=f"also convcli's img/s at batches {BATCHES}")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    nets = tuple(args.net or NETWORKS)
    print(
        f"{machine_line()}\nMNIST's 10,000 test images, torch batch {TORCH_BATCH}; "
        f"best of {args.rounds} alternated round(s)",
        flush=True,
    )
    print(
        f"{'network':17}{'batch':>6}{'convcli':>9}{'torch':>8}{'ratio':>7}{'cpu ratio':>10}"
        f"{'command':>9}{'ratio':>7}{'convcli acc':>12}{'torch acc':>10}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for net in nets:
            path = checkpoint(net, args.data, args.train_images, Path(folder))
            x, y = test_images(path, args.data)
            runs = {"convcli": convcli_run(path, x), "torch": torch_run(path, x)}
            best: dict[str, tuple[float, float]] = {}
            accuracy: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, run in runs.items():
                    wall, cpu, logits = timed(run)
                    accuracy[name] = float((logits.argmax(axis=1) == y).mean())
                    previous = best.get(name, (wall, cpu))
                    best[name] = (min(previous[0], wall), min(previous[1], cpu))
            seconds, doc = min((command(path, args.data, args.threads) for _ in range(2)), key=lambda r: r[0])
            assert doc["accuracy"] == accuracy["convcli"], (doc["accuracy"], accuracy["convcli"])
            (cw, cc), (tw, tc) = best["convcli"], best["torch"]
            n = len(x)
            agree = "" if accuracy["convcli"] == accuracy["torch"] else "  (accuracies differ!)"
            print(
                f"{net:17}{inference_batch(analyse_of(net)):>6}{n / cw:>9.0f}{n / tw:>8.0f}{tw / cw:>6.2f}x"
                f"{tc / cc:>9.2f}x{n / seconds:>9.0f}{tw / seconds:>6.2f}x{100 * accuracy['convcli']:>11.2f}%"
                f"{100 * accuracy['torch']:>9.2f}%{agree}",
                flush=True,
            )
            if args.batches:
                cells = []
                for batch in BATCHES:
                    wall = min(timed(convcli_run(path, x, batch))[0] for _ in range(2))
                    cells.append(f"{batch}: {n / wall:.0f}")
                print(f"  convcli img/s by batch: {', '.join(cells)}", flush=True)
    print(
        "img/s: wall clock of the in-process forwards (load_model + fold + predict_logits; torch: the "
        "module's forwards); ratio = convcli img/s / torch img/s (target >= 1), cpu ratio the same in CPU "
        "time; command = 10,000 / the wall time of the whole 'convcli evaluate' (start-up and data "
        f"included), its ratio against torch's forwards. Load average at the end {os.getloadavg()[0]:.1f}"
    )


def analyse_of(net: str):
    from convcli.networks.report import analyse
    from convcli.networks.zoo import get

    return analyse(get(net))


if __name__ == "__main__":
    main()
