"""LeNet-5 (modern, zoo 'lenet5') on MNIST: convcli's numpy training against PyTorch on the CPU.

Both train the same architecture (32x32x1 input, MNIST padded by 2 as LeCun did) with the
optimiser of ``convcli train lenet5``'s recipe (`convcli.training.recipes.RECIPES`: SGD, momentum
0.9, lr 0.01, cosine schedule, weight decay 5e-4) at batch 64, the speed target's batch size (the
recipe itself trains at 32, ``--batch 32`` here), on the same normalised images, all
60,000 training images (``convcli train`` holds 10% out for validation); each runs in its own
process so peak memory (ru_maxrss) is its own. Prints seconds per epoch, the ratio convcli /
PyTorch (target <= 1.5), images/s, peak memory and test accuracy after each epoch. The machine
is shared and its speed drifts by 20% from minute to minute: each framework runs ``--rounds``
times (default 2), alternated, and the ratio is taken between the best runs.

numpy's OpenBLAS picks its kernel for the processor unless ``OPENBLAS_CORETYPE`` forces one; the
header line shows the setting. Some machines set ``OPENBLAS_CORETYPE=Haswell`` (with
``OPENBLAS_L2_SIZE``) for older builds; unset both for that one command to measure numpy's own
kernel (AVX-512 on a current x86 server): ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...``.

    python benchmarks/bench_train.py --data /work/shared/data/mnist                  # one epoch each
    python benchmarks/bench_train.py --data /work/shared/data/mnist --epochs 10 --only convcli --rounds 1
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

from convcli.training.loop import TrainConfig
from convcli.training.recipes import RECIPES

THREADS = 2
MOMENTUM = TrainConfig.momentum
RECIPE = RECIPES["lenet5"]


def load(data: str):
    from convcli.training.datasets import resolve_data
    from convcli.training.loop import prepare_images

    splits = resolve_data(data, validation=0.0, seed=0)
    x = prepare_images(splits.train.images, (32, 32, 1), splits.mean, splits.std)
    xt = prepare_images(splits.test.images, (32, 32, 1), splits.mean, splits.std)
    return x, splits.train.labels, xt, splits.test.labels


def run_convcli(args) -> dict:
    from convcli.networks.report import analyse
    from convcli.networks.zoo import get
    from convcli.nn.model import build_model
    from convcli.nn.optim import make_optimizer
    from convcli.training.loop import TrainConfig, evaluate, fit

    x, y, xt, yt = load(args.data)
    model = build_model(analyse(get("lenet5")), seed=args.seed)
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
        print(
            f"  convcli epoch {record.epoch}: {record.seconds:.1f} s, test {100 * accuracy[-1]:.2f}%", file=sys.stderr
        )

    records = fit(model, optimizer, x, y, config, on_epoch=on_epoch)
    return {"seconds": [r.seconds for r in records], "accuracy": accuracy, "images": len(x)}


def run_torch(args) -> dict:
    import torch
    from torch import nn

    from convcli.nn.optim import scheduled_lr

    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)
    x, y, xt, yt = load(args.data)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
    # weight decay on weights only, as convcli applies it
    weights = [p for p in net.parameters() if p.ndim > 1]
    biases = [p for p in net.parameters() if p.ndim == 1]
    opt = torch.optim.SGD(
        [{"params": weights, "weight_decay": args.weight_decay}, {"params": biases, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=MOMENTUM,
    )
    xs, ys, xts = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xt)
    seconds, accuracy = [], []
    batch = args.batch
    for epoch in range(args.epochs):
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(args.schedule, args.lr, epoch, args.epochs)
        order = torch.from_numpy(np.random.default_rng((args.seed, epoch)).permutation(len(x)))
        net.train()
        start = time.perf_counter()
        for b in range(0, len(x), batch):
            idx = order[b : b + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
        net.eval()
        with torch.no_grad():
            accuracy.append(float((net(xts).argmax(1).numpy() == yt).mean()))
        print(f"  torch epoch {epoch + 1}: {seconds[-1]:.1f} s, test {100 * accuracy[-1]:.2f}%", file=sys.stderr)
    return {"seconds": seconds, "accuracy": accuracy, "images": len(x)}


def child(args) -> None:
    result = (run_convcli if args.framework == "convcli" else run_torch)(args)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", help="mnist, or a directory of the MNIST IDX files")
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
        child(args)
        return
    names = [n for n in ("torch", "convcli") if not args.only or n == args.only]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:  # alternated, so that a noisy minute hits both
            cmd = [
                sys.executable,
                __file__,
                "--framework",
                name,
                "--data",
                args.data,
                "--epochs",
                str(args.epochs),
                "--batch",
                str(args.batch),
                "--seed",
                str(args.seed),
                "--lr",
                str(args.lr),
                "--schedule",
                args.schedule,
                "--weight-decay",
                str(args.weight_decay),
            ]
            done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            if done.returncode:
                print(f"{name}: failed (exit {done.returncode})")
                continue
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results = {name: rs for name, rs in runs.items() if rs}
    print(
        f"LeNet-5 on MNIST, batch {args.batch}, SGD momentum {MOMENTUM}, lr {args.lr} ({args.schedule}), "
        f"weight decay {args.weight_decay}, {THREADS} threads for torch, "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    print(f"seconds per epoch: mean over {args.epochs} epoch(s) of each run; best of {args.rounds} alternated run(s)")
    print(f"{'':10}{'s/epoch':>10}{'runs':>16}{'img/s':>10}{'peak MB':>10}{'test acc':>10}")
    best = {}
    for name, rs in results.items():
        per_run = [float(np.mean(r["seconds"])) for r in rs]
        best[name] = min(per_run)
        print(
            f"{name:10}{best[name]:10.2f}{' '.join(f'{t:.2f}' for t in per_run):>16}"
            f"{rs[0]['images'] / best[name]:10,.0f}{max(r['peak_mb'] for r in rs):10.0f}"
            f"{100 * rs[0]['accuracy'][-1]:9.2f}%"
        )
    if len(best) == 2:
        print(f"time per epoch, convcli / torch: {best['convcli'] / best['torch']:.2f}x (target <= 1.5x)")
    if "convcli" in results:
        acc = results["convcli"][0]["accuracy"]
        print(
            f"convcli test accuracy by epoch: {', '.join(f'{100 * a:.2f}%' for a in acc)} "
            f"(target >= 99.0% within 10 epochs)"
        )


if __name__ == "__main__":
    main()
