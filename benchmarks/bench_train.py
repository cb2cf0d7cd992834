"""The digit networks on MNIST: convcli's numpy training against PyTorch on the CPU.

Each network (``lenet5`` and the zoo's ``mnist-*`` families, `convcli.networks.zoo.DIGIT_NETWORKS`)
is trained by convcli and by the PyTorch module of the same network report
(`convcli.interop.torch_model.build_torch_model`, the module ``convcli train --backend torch``
trains and ``convcli export`` writes: the same layers, padding, batch norm and bias settings, and
the same initial weights for the seed), with the same optimiser (SGD, momentum 0.9, lr 0.01,
cosine schedule, weight decay 5e-4 on the weights: ``convcli train lenet5``'s recipe,
`convcli.training.recipes.RECIPES`), batch 64, on the same normalised images: the first
``--images`` (default 12,000) of MNIST's training set, padded to 32x32 for LeNet-5 as LeCun did.
Each run is its own process, so peak memory (ru_maxrss) is its
own. Prints seconds per epoch, the ratio convcli / PyTorch (target <= 1.2), test accuracy on
MNIST's 10,000 test images and peak memory. The machine is shared and its speed drifts by 20%
from minute to minute: every network runs ``--rounds`` times per framework (default 2),
alternated, and the ratio is taken between the best runs.

The header (benchmarks/machine.py) names the processor and the BLAS kernel numpy's OpenBLAS
runs (threadpoolctl); OpenBLAS picks it for the processor unless ``OPENBLAS_CORETYPE`` forces one.
To measure numpy's own choice where the environment forces one:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...``.

    python benchmarks/bench_train.py --data /work/shared/data/mnist --all          # every network
    python benchmarks/bench_train.py --data DIR --net mnist-resnet --rounds 3
    python benchmarks/bench_train.py --data DIR --images 60000 --epochs 10 --only convcli --rounds 1
    # LeCun et al. 1998 report 0.95% test error for LeNet-5: aim for >= 99.0% within 10 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from convcli.interop.torch_model import build_torch_model
from convcli.networks.report import Report
from convcli.networks.zoo import DIGIT_NETWORKS
from convcli.training.loop import TrainConfig
from convcli.training.recipes import RECIPES

from machine import machine_line

THREADS = 2
MOMENTUM = TrainConfig.momentum
RECIPE = RECIPES["lenet5"]
NETWORKS = ("lenet5", *(name for name in DIGIT_NETWORKS if name.startswith("mnist-")))


def load(data: str, input_shape: tuple[int, ...], images: int):
    from convcli.training.datasets import resolve_data
    from convcli.training.loop import prepare_images

    splits = resolve_data(data, validation=0.0, seed=0)
    x = prepare_images(splits.train.images[:images], input_shape, splits.mean, splits.std)
    xt = prepare_images(splits.test.images, input_shape, splits.mean, splits.std)
    return x, splits.train.labels[:images], xt, splits.test.labels


def report_of(name: str) -> Report:
    from convcli.networks.report import analyse
    from convcli.networks.zoo import get

    return analyse(get(name))


def run_convcli(args) -> dict:
    from convcli.nn.model import build_model
    from convcli.nn.optim import make_optimizer
    from convcli.training.loop import evaluate, fit

    report = report_of(args.net)
    x, y, xt, yt = load(args.data, report.network.input, args.images)
    model = build_model(report, seed=args.seed)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch,
        optimizer="momentum",
        lr=args.lr,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        momentum=MOMENTUM,
        seed=args.seed,
    )
    optimizer = make_optimizer("momentum", model, args.lr, args.weight_decay, MOMENTUM)
    accuracy = []

    def on_epoch(record):
        accuracy.append(evaluate(model, xt, yt, 10).accuracy)
        print(f"  convcli {args.net} epoch {record.epoch}: {record.seconds:.1f} s", file=sys.stderr)

    records = fit(model, optimizer, x, y, config, on_epoch=on_epoch)
    return {"seconds": [r.seconds for r in records], "accuracy": accuracy}


def run_torch(args) -> dict:
    import torch
    from torch import nn

    from convcli.nn.optim import scheduled_lr

    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)  # dropout's masks
    report = report_of(args.net)
    x, y, xt, yt = load(args.data, report.network.input, args.images)
    net = build_torch_model(report, seed=args.seed)
    # weight decay on weights only, as convcli applies it
    weights = [p for p in net.parameters() if p.ndim > 1]
    others = [p for p in net.parameters() if p.ndim == 1]
    opt = torch.optim.SGD(
        [{"params": weights, "weight_decay": args.weight_decay}, {"params": others, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=MOMENTUM,
    )
    xs, ys, xts = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xt)
    seconds, accuracy = [], []
    for epoch in range(args.epochs):
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(args.schedule, args.lr, epoch, args.epochs)
        order = torch.from_numpy(np.random.default_rng((args.seed, epoch)).permutation(len(x)))
        net.train()
        start = time.perf_counter()
        for b in range(0, len(x), args.batch):
            idx = order[b : b + args.batch]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(xts[i : i + 500]) for i in range(0, len(xts), 500)])
            accuracy.append(float((logits.argmax(1).numpy() == yt).mean()))
        print(f"  torch {args.net} epoch {epoch + 1}: {seconds[-1]:.1f} s", file=sys.stderr)
    return {"seconds": seconds, "accuracy": accuracy}


def child(args) -> None:
    result = (run_convcli if args.framework == "convcli" else run_torch)(args)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", help="mnist, or a directory of the MNIST IDX files")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help=f"every network: {', '.join(NETWORKS)}")
    which.add_argument("--net", choices=NETWORKS, action="append", help="a network (repeatable; default lenet5)")
    parser.add_argument("--images", type=int, default=12_000, help="training images (the first ones)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=RECIPE["lr"])
    parser.add_argument("--schedule", choices=("none", "step", "cosine"), default=RECIPE["schedule"])
    parser.add_argument("--weight-decay", type=float, default=RECIPE["weight_decay"])
    parser.add_argument("--only", choices=("convcli", "torch"))
    parser.add_argument("--rounds", type=int, default=2, help="runs of each framework, alternated; the best counts")
    parser.add_argument("--framework", choices=("convcli", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.framework:
        args.net = args.net[0]
        child(args)
        return
    nets = NETWORKS if args.all else tuple(args.net or ("lenet5",))
    frameworks = [n for n in ("torch", "convcli") if not args.only or n == args.only]
    print(
        f"{machine_line()}\ntorch {THREADS} threads; {args.images:,} MNIST images, batch {args.batch}, "
        f"SGD momentum {MOMENTUM}, lr {args.lr} "
        f"({args.schedule}), weight decay {args.weight_decay}; best of {args.rounds} alternated round(s) "
        f"of {args.epochs} epoch(s)",
        flush=True,
    )
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for net in nets:
            for name in frameworks:  # alternated, so that a noisy minute hits both
                cmd = [sys.executable, __file__, "--framework", name, "--net", net, "--data", args.data]
                for option in ("images", "epochs", "batch", "seed", "lr", "schedule", "weight_decay"):
                    cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
                done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
                if done.returncode:
                    print(f"{name} {net}: failed (exit {done.returncode})")
                    continue
                runs.setdefault((net, name), []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"{'network':18}{'convcli s':>10}{'torch s':>9}{'ratio':>7}{'convcli acc':>13}{'torch acc':>11}"
        f"{'convcli MB':>12}{'torch MB':>10}"
    )
    for net in nets:
        cells = {}
        for name in ("convcli", "torch"):
            rs = runs.get((net, name), [])
            if rs:
                best = min(float(np.mean(r["seconds"])) for r in rs)
                cells[name] = (best, 100 * rs[0]["accuracy"][-1], max(r["peak_mb"] for r in rs))
        c, t = cells.get("convcli"), cells.get("torch")
        ratio = f"{c[0] / t[0]:.2f}x" if c and t else "-"

        def cell(v, i, fmt):
            return format(v[i], fmt) if v else "-"

        print(
            f"{net:18}{cell(c, 0, '.2f'):>10}{cell(t, 0, '.2f'):>9}{ratio:>7}{cell(c, 1, '.2f'):>12}%"
            f"{cell(t, 1, '.2f'):>10}%{cell(c, 2, '.0f'):>12}{cell(t, 2, '.0f'):>10}"
        )
    print(
        "ratio: s/epoch convcli / torch, best runs (target <= 1.2x); accuracy after the last epoch; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores: above "
        f"{os.cpu_count()} the times say more about them than about either framework)"
    )


if __name__ == "__main__":
    main()
