"""convcli's training step on one worker and on the thread pool (`convcli.threads`), and the
pool's two ways of keeping OpenBLAS from oversubscribing the cores.

For each digit network, a training step at batch 64 (forward, loss, backward; no update) is
timed in wall-clock milliseconds, best of ``--rounds``, the settings alternated within each
round so that the drift of a shared machine hits them alike:

- ``1 worker``: everything on the calling thread, OpenBLAS at one thread;
- ``pool``: `convcli.threads.workers` slices at once, OpenBLAS held at one thread while the pool
  exists (what convcli does);
- ``pool, BLAS per call``: the same slices, OpenBLAS set to one thread on entering each split op
  and back to ``--blas`` threads on leaving it, so that the ops left whole (fully connected
  layers, the loss) get OpenBLAS's own threads.

Prints the milliseconds and the ratios against ``1 worker`` in the same run; not a test. Wall
time is what the pool buys, so run it on a machine as quiet as you can find and look at the load
average it prints.

    python benchmarks/bench_threads.py                    # every digit network, 5 rounds
    python benchmarks/bench_threads.py --net mnist-resnet --rounds 10
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from convcli import threads
from convcli.networks.report import analyse
from convcli.networks.zoo import DIGIT_NETWORKS, get
from convcli.nn.loss import softmax_cross_entropy
from convcli.nn.model import build_model
from convcli.ops import conv

NETWORKS = ("lenet5", *DIGIT_NETWORKS)
BATCH = 64


def per_call(blas: int) -> Callable:
    """`threads.map_parts`, with OpenBLAS at one thread only while the parts run."""
    plain = threads.map_parts

    def run(fn, parts):
        if len(parts) == 1:
            return plain(fn, parts)
        threads.set_blas_threads(1)
        try:
            return plain(fn, parts)
        finally:
            threads.set_blas_threads(blas)

    return run


def use(map_parts: Callable) -> None:
    """Make every split op (those that import it, and `threads.map_slices`) call ``map_parts``."""
    threads.map_parts = conv.map_parts = map_parts


def step_ms(name: str, steps: int) -> Callable[[], float]:
    report = analyse(get(name))
    h, w, c = report.input_shape
    model = build_model(report, seed=0)
    x = np.random.default_rng(0).standard_normal((BATCH, c, h, w)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 10, BATCH)

    def step() -> None:
        _, dlogits = softmax_cross_entropy(model.forward(x), labels)
        model.backward(dlogits, input_grad=False)

    def timed() -> float:
        step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - start) / steps * 1e3

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=NETWORKS, action="append", help="[default: every digit network]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="steps per timing")
    parser.add_argument("--blas", type=int, default=threads.workers(), help="OpenBLAS threads outside the pool")
    args = parser.parse_args()
    plain, switching = threads.map_parts, per_call(args.blas)
    print(f"{threads.workers()} workers; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'network':16} {'1 worker':>9} {'pool':>14} {'pool, BLAS per call':>22}")
    for name in args.net or NETWORKS:
        timed = step_ms(name, args.steps)
        best = {"one": float("inf"), "pool": float("inf"), "per call": float("inf")}
        for _ in range(args.rounds):
            with threads.using(1):
                threads.set_blas_threads(1)
                best["one"] = min(best["one"], timed())
            use(plain)
            threads.set_blas_threads(1)
            best["pool"] = min(best["pool"], timed())
            use(switching)
            best["per call"] = min(best["per call"], timed())
            use(plain)
        one = best["one"]
        print(
            f"{name:16} {one:7.1f}ms {best['pool']:7.1f}ms {one / best['pool']:4.2f}x"
            f" {best['per call']:13.1f}ms {one / best['per call']:4.2f}x"
        )
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
