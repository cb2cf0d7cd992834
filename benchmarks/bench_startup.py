"""Start-up time of the arithmetic commands, as whole processes, against `python -c "import typer"`.

Target (issue: the package and shape-calc/params/flops): at most 1.5x the anchor. Run it in a
venv where convcli is installed as the README says (`pip install .`): an editable install
(`pip install -e .`) puts an import hook in front of every import and adds ~15 ms to each command.

    python benchmarks/bench_startup.py [--runs 21]

Prints the median wall time of each command and its ratio to the anchor measured in the same run,
interleaved so that machine noise hits all of them alike.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

from machine import machine_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    convcli = shutil.which("convcli") or sys.exit("convcli is not on PATH: install the project first")
    commands = {
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        "convcli shape-calc 39x39x3 conv:10,f=3 conv:20,f=5,s=2 conv:40,f=5,s=2 flatten": [
            convcli,
            "shape-calc",
            "39x39x3",
            "conv:10,f=3",
            "conv:20,f=5,s=2",
            "conv:40,f=5,s=2",
            "flatten",
        ],
        "convcli shape-calc -n 7 -f 3 -s 2": [convcli, "shape-calc", "-n", "7", "-f", "3", "-s", "2"],
        "convcli params resnet50": [convcli, "params", "resnet50"],
        "convcli flops mobilenet-v2 --json": [convcli, "flops", "mobilenet-v2", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm caches
    for _ in range(args.runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    anchor = statistics.median(times['python -c "import typer"'])
    print(machine_line())
    print(f"{'command':78s} {'median':>9s} {'ratio':>6s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:78s} {median * 1000:7.1f}ms {median / anchor:5.2f}x")
    print(f"target: each convcli command at most 1.50x the anchor ({args.runs} runs each)")


if __name__ == "__main__":
    main()
