"""``convcli train --backend numpy`` against ``--backend torch``: seconds per epoch of the same
network, the same settings and the same images, each run ``convcli train ... --json`` in a
process of its own (in one process, PyTorch's OpenMP threads keep spinning after their work and
slow numpy's BLAS threads down), the backends alternated.

digits-cnn trains on the built-in 8x8 digits (1,295 training images, batch 32); mnist-cnn on
``--images`` 28x28 images (batch 64): the first of MNIST's training images when ``--data`` names a
directory of its IDX files, else synthetic digits (the 8x8 digits enlarged to 28x28 with noise),
which cost the same per image. Each run trains two epochs and the second is timed (the first
includes PyTorch's one-off kernel set-up); each backend runs ``--rounds`` times, alternated, and
the ratio is taken between the best runs, since the machine is shared and drifts.

    python benchmarks/bench_backends.py
    python benchmarks/bench_backends.py --data /path/to/mnist --images 12000 --rounds 3
    python benchmarks/bench_backends.py --threads 1    # one core each: steadier on a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from machine import machine_line

BACKENDS = ("numpy", "torch")


def mnist_sized(folder: Path, data: str | None, n: int) -> Path:
    """An .npz of ``n`` 28x28 training images (and 1,000 test images): MNIST's own, or synthetic."""
    if data:
        from convcli.training.loaders import load_mnist_dir

        train_part, test_part = load_mnist_dir(Path(data))
        x = (train_part.images[:n, 0] * 255).astype(np.uint8)
        y, xt, yt = train_part.labels[:n], (test_part.images[:1000, 0] * 255).astype(np.uint8), test_part.labels[:1000]
    else:
        from convcli.training.datasets import resolve_data

        digits = resolve_data("digits", validation=0.0, seed=0).train
        rng = np.random.default_rng(0)
        pick = rng.integers(0, len(digits), n + 1000)
        big = np.kron(digits.images[pick, 0], np.ones((3, 3), np.float32))  # 24x24
        big = np.pad(big, ((0, 0), (2, 2), (2, 2))) + rng.normal(0, 0.05, (len(pick), 28, 28))
        images = (np.clip(big, 0, 1) * 255).astype(np.uint8)
        x, xt, y, yt = images[:n], images[n:], digits.labels[pick[:n]], digits.labels[pick[n:]]
    path = folder / "mnist-sized.npz"
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return path


def epoch_seconds(network: str, data: str, backend: str, threads: int | None) -> float:
    """The second epoch's training time of ``convcli train NETWORK --backend BACKEND``."""
    env = dict(os.environ)
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "convcli", "train", network, "--data", data, "--epochs", "2"]
    command += ["--backend", backend, "--device", "cpu", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)["history"][-1]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a directory of MNIST's IDX files [default: synthetic 28x28 digits]")
    parser.add_argument("--images", type=int, default=6000, help="28x28 training images per epoch (default 6000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, help="threads for numpy's BLAS and for torch [default: their own choice]"
    )
    args = parser.parse_args()
    import torch  # named in the header

    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)  # for the header; each run gets OMP_NUM_THREADS
        threadpool_limits(args.threads)
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("digits-cnn", "digits", "built-in digits, 1,295 images, batch 32")]
        source = "MNIST" if args.data else "synthetic"
        runs.append(("mnist-cnn", str(mnist_sized(Path(tmp), args.data, args.images)), f"{source} 28x28"))
        for network, data, about in runs:
            best = {backend: float("inf") for backend in BACKENDS}
            for _ in range(args.rounds):
                for backend in BACKENDS:
                    seconds = epoch_seconds(network, data, backend, args.threads)
                    best[backend] = min(best[backend], seconds)
                    print(f"  {network} {backend}: {seconds:.2f} s/epoch", file=sys.stderr)
            print(
                f"{network} ({about}): numpy {best['numpy']:.2f} s/epoch, torch {best['torch']:.2f} s/epoch, "
                f"numpy / torch = {best['numpy'] / best['torch']:.2f}"
            )


if __name__ == "__main__":
    main()
