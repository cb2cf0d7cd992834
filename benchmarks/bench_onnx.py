"""torchvision's models as ONNX files, read by convcli: parameters and MACs against the figures
torchvision publishes in its weights' metadata (``num_params``, ``_ops`` in GFLOPS, which are
GMACs), and the operators convcli did not know.

    python benchmarks/bench_onnx.py [--markdown]

Each model is built with random weights (torchvision's definitions; nothing is downloaded),
exported at 224 x 224 in eval mode by ``torch.onnx.export(..., dynamo=False)`` into a temporary
folder, and read with ``convcli params``'s and ``convcli flops``'s core call. Exporting folds
batch norm into the convolutions, so the file holds fewer parameters than the model had; the
table says how many layers were folded. Needs torch, torchvision and onnx.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from convcli.networks.costs import Counting  # noqa: E402
from convcli.networks.load import load_network  # noqa: E402
from convcli.networks.report import analyse  # noqa: E402

from machine import machine_line  # noqa: E402
from torchvision_models import NAMES, export, file_weights, published  # noqa: E402

HEADER = (
    "model",
    "params in the file",
    "convcli params",
    "torchvision params",
    "BN folded",
    "convcli GMACs",
    "torchvision GFLOPS",
    "unknown operators",
)


def rows() -> list[tuple[str, ...]]:
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for name in NAMES:
            path = Path(folder) / f"{name}.onnx"
            export(name, path)
            network = load_network([str(path)])
            report = analyse(network, Counting(keras=True))  # batch norm statistics are weights of the file too
            folded = next((n.split(": ")[1].split()[0] for n in network.notes if n.startswith("batch norm")), "0")
            meta = published(name)
            unknown = ", ".join(f"{op} x {n}" for op, n in report.unknown_operators.items()) or "none"
            out.append(
                (
                    name,
                    f"{file_weights(path):,}",
                    f"{report.totals.params:,}",
                    f"{meta['num_params']:,}",
                    folded,
                    f"{report.totals.macs / 1e9:.3f}",
                    f"{meta['_ops']:.3f}",
                    unknown,
                )
            )
            print(f"  {name} done", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (the README's)")
    args = parser.parse_args()
    table = [HEADER, *rows()]
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join("---" if i == 0 or i == 7 else "---:" for i in range(len(HEADER))) + "|")
        for row in table[1:]:
            print("| " + " | ".join(row) + " |")
        return
    print(machine_line())  # not in the Markdown table: the README's copy of it
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    for row in table:
        cells = (cell.ljust(w) if i in (0, 7) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        print("  ".join(cells))


if __name__ == "__main__":
    main()
