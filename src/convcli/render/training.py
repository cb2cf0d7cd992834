"""Printing training runs, learned filters, evaluations and predictions: live progress, tables, JSON.

Progress bars are drawn only when stderr is a terminal and ``--json`` is off; the per-epoch
(per-step) lines and download progress go to stderr too, so stdout holds only the final result
(table or JSON).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from convcli.render.emit import Column, Table, count, emit_json, emit_table, human, note

if TYPE_CHECKING:
    import numpy as np
    from rich.progress import Progress, TaskID


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


def _num(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


class TrainingDisplay:
    """A `convcli.training.run.Reporter`: a rich progress bar per epoch (loss, accuracy, images/s,
    ETA) on a terminal and one line per finished epoch on stderr; silent with ``quiet``.
    Downloads (``--data mnist`` the first time) are shown even with ``quiet``, since they can
    take minutes and must not look like a hang: a line per file started and finished on stderr,
    and a byte counter on a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.task_started = 0.0
        self.epoch_no = 0
        self.epochs = 0
        self.file: str | None = None
        self.fetch: Progress | None = None
        self.fetch_task: TaskID | None = None

    def download(self, done, total, name) -> None:
        if name != self.file:
            self._stop_fetch()
            self.file = name
            note(f"downloading {name}" + (f" ({total / 1e6:.1f} MB)" if total else ""))
            if sys.stderr.isatty():
                from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

                from convcli.render.emit import console

                self.fetch = Progress(
                    TextColumn(name),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    console=console(stderr=True),
                    transient=True,
                )
                self.fetch_task = self.fetch.add_task("", total=total)
                self.fetch.start()
        if self.fetch is not None and self.fetch_task is not None:
            self.fetch.update(self.fetch_task, completed=done)
        if total is not None and done == total:
            self._stop_fetch()
            note(f"downloaded {name}")

    def _stop_fetch(self) -> None:
        if self.fetch is not None:
            self.fetch.stop()
            self.fetch = None

    def start(self, epochs, start_epoch, n_train, model, words, macs) -> None:
        self.epochs, self.epoch_no = epochs, start_epoch + 1
        if self.quiet:
            return
        note(f"training {words}")
        note(
            f"{count(model.n_params())} parameters, {human(macs)} MACs per image, {count(n_train)} "
            f"training images, epochs {start_epoch + 1}..{epochs}"
        )
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            from convcli.render.emit import console

            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.2%}"),
                TextColumn("{task.fields[rate]:,.0f} img/s"),
                TimeRemainingColumn(),
                console=console(stderr=True),
                transient=True,
            )
            self.progress.start()

    def batch(self, done, total, loss, accuracy) -> None:
        if self.progress is None:
            return
        if self.task is None:
            # A task id is not a position in progress.tasks once an epoch's task has been removed,
            # so the rate is timed here rather than read back from rich's task.
            self.task_started = time.perf_counter()
            self.task = self.progress.add_task(
                "", total=total, epoch=self.epoch_no, epochs=self.epochs, loss=loss, acc=accuracy, rate=0.0
            )
        elapsed = time.perf_counter() - self.task_started
        rate = done / elapsed if elapsed > 0 else 0.0
        self.progress.update(self.task, completed=done, loss=loss, acc=accuracy, rate=rate)

    def epoch(self, record) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.epoch_no = record.epoch + 1
        if not self.quiet:
            note(
                f"epoch {record.epoch}/{self.epochs}  lr {record.lr:.3g}  loss {record.train_loss:.4f}  "
                f"train {_pct(record.train_accuracy)}  val loss {_num(record.val_loss)}  "
                f"val {_pct(record.val_accuracy)}  {record.seconds:.1f} s  {record.images_per_second:,.0f} img/s"
            )

    def close(self) -> None:
        self._stop_fetch()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _confusion_table(confusion, names, title: str) -> Table:
    columns = [("true \\ predicted", "left")] + [(n, "right") for n in names]
    rows = [[n] + [str(v) for v in row] for n, row in zip(names, confusion.tolist())]
    return Table(columns, rows, title=title)


def _evaluation_dict(ev, names) -> dict:
    def clean(v):
        return None if math.isnan(v) else float(v)

    return {
        "n": ev.n,
        "loss": ev.loss,
        "accuracy": ev.accuracy,
        "confusion": ev.confusion.tolist(),
        "per_class": [
            {"class": n, "precision": clean(p), "recall": clean(r), "support": int(s)}
            for n, p, r, s in zip(names, ev.precision, ev.recall, ev.confusion.sum(axis=1))
        ],
    }


def _summary_table(result) -> Table:
    """One row: network, test accuracy, params, MACs, time per epoch, a training step's peak memory
    estimated and measured. The same columns for every network, so runs of different families on
    the same data line up."""
    per_epoch = result.seconds_per_epoch
    row = [
        result.name or "(spec)",
        _pct(result.test.accuracy if result.test else None),
        count(result.n_params),
        human(result.macs),
        "-" if per_epoch is None else f"{per_epoch:.1f}",
        str(len(result.history)),
        _mib(result.memory.estimate if result.memory else None),
        _mib(result.memory.measured if result.memory else None),
    ]
    return Table(
        [
            ("network", "left"),
            ("test acc", "right"),
            ("params", "right"),
            Column("MACs/image", "right", drop=3),
            Column("s/epoch", "right", drop=1),
            Column("epochs", "right", drop=2),
            Column("peak MiB (est.)", "right", drop=4),
            Column("measured", "right", drop=4),
        ],
        [row],
        title="Summary",
        footer=[MEMORY_NOTE.format(batch=result.memory.batch_size)] if result.memory else [],
    )


MEMORY_NOTE = (
    "peak: a training step at batch {batch}, float32; estimated (weights, gradients, optimiser state, "
    "the caches kept for backward, the largest work arrays) and measured (tracemalloc over the first two steps)"
)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _memory_dict(check) -> dict | None:
    """A training step's peak in bytes, estimated and measured (documented in the README)."""
    if check is None:
        return None
    return {"batch_size": check.batch_size, "estimate_bytes": check.estimate, "measured_bytes": check.measured}


def show_training(result, json_out: bool) -> None:
    """The history table, the final test accuracy, the confusion matrix and a one-row summary
    (or JSON)."""
    if json_out:
        doc = {
            "name": result.name or None,
            "spec": result.words,
            "params": result.n_params,
            "macs": result.macs,
            "seconds_per_epoch": result.seconds_per_epoch,
            "config": result.config.to_dict(),
            "data": result.data.to_json(),
            "history": [asdict(h) for h in result.history],
            "interrupted": result.interrupted,
            "checkpoint": str(result.output) if result.output else None,
            "plot": str(result.plot) if result.plot else None,
            "test_accuracy": result.test.accuracy if result.test else None,
            "memory": _memory_dict(result.memory),
        }
        if result.test:
            doc["test"] = _evaluation_dict(result.test, result.class_names)
        emit_json(doc)
        return
    rows = [
        [
            str(h.epoch),
            f"{h.lr:.3g}",
            _num(h.train_loss),
            _pct(h.train_accuracy),
            _num(h.val_loss),
            _pct(h.val_accuracy),
            f"{h.seconds:.1f}",
            f"{h.images_per_second:,.0f}",
        ]
        for h in result.history
    ]
    emit_table(
        Table(
            [
                ("epoch", "right"),
                Column("lr", "right", drop=3),
                ("loss", "right"),
                ("train acc", "right"),
                ("val loss", "right"),
                ("val acc", "right"),
                Column("seconds", "right", drop=2),
                Column("img/s", "right", drop=1),
            ],
            rows,
            title="Training history",
        )
    )
    if result.interrupted:
        done = result.history[-1].epoch if result.history else 0
        kept = f"; {result.output} holds epoch {done}" if result.output and done else ""
        note(f"interrupted after {done} complete epoch{'s' if done != 1 else ''}{kept}")
        return
    note(
        f"test accuracy {_pct(result.test.accuracy)} on {count(result.test.n)} images"
        + (f"; saved {result.output}" if result.output else "")
        + (f"; curves in {result.plot}" if result.plot else "")
    )
    emit_table(_confusion_table(result.test.confusion, result.class_names, "Confusion matrix (test)"))
    emit_table(_summary_table(result))


def show_evaluation(result, json_out: bool) -> None:
    """Accuracy, per-class precision and recall, and the confusion matrix of ``convcli evaluate``."""
    ev, names = result.evaluation, result.class_names
    if json_out:
        emit_json({"checkpoint": str(result.path), "data": result.data, **_evaluation_dict(ev, names)})
        return
    support = ev.confusion.sum(axis=1)
    rows = [[n, _pct(p), _pct(r), str(s)] for n, p, r, s in zip(names, ev.precision, ev.recall, support)]
    emit_table(
        Table(
            [("class", "left"), ("precision", "right"), ("recall", "right"), ("support", "right")],
            rows,
            title=f"{result.path} on {result.data} (test part)",
            footer=[f"accuracy {_pct(ev.accuracy)} on {count(ev.n)} images, loss {ev.loss:.4f}"],
        )
    )
    emit_table(_confusion_table(ev.confusion, names, "Confusion matrix"))


def show_predictions(results: list[dict], json_out: bool) -> None:
    """One row per image: the prediction and the top-k classes with probabilities."""
    if json_out:
        emit_json(results)
        return
    rows = [
        [r["file"], r["prediction"], "  ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])]
        for r in results
    ]
    emit_table(Table([("file", "left"), ("prediction", "left"), Column("top classes (probability)", wrap=True)], rows))


class FilterDisplay:
    """A `convcli.training.filter_fit.FilterReporter`: a progress bar on a terminal, and about ten
    lines on stderr with the MSE, the largest weight error and the current weights (up to 3x3),
    so the error is seen falling and the matrix converging; silent with ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.target: np.ndarray | None = None
        self.every = 1

    def start(self, steps, target, images, size) -> None:
        self.target, self.every = target.array(), max(1, steps // 10)
        if self.quiet:
            return
        fh, fw = target.shape
        note(
            f"learning {target.name} ({fh}x{fw}) from random weights: {images} image{'s' if images > 1 else ''}, "
            f"{size}x{size} crops, {steps} steps"
        )
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn

            from convcli.render.emit import console

            self.progress = Progress(
                TextColumn("step"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("mse {task.fields[mse]:.3e}"),
                console=console(stderr=True),
                transient=True,
            )
            self.task = self.progress.add_task("", total=steps, mse=float("nan"))
            self.progress.start()

    def step(self, step, steps, mse, weights) -> None:
        if self.quiet:
            return
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=step, mse=mse)
        if step % self.every == 0 or step == steps:
            shown = "  w " + " | ".join(_rows(weights, "5.2f", 2)) if weights.size <= 9 else ""
            note(
                f"step {step:>{len(str(steps))}}/{steps}  mse {mse:.3e}  "
                f"max |w - target| {abs(weights - self.target).max():.2e}{shown}"
            )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _rows(matrix, fmt: str, digits: int | None = None) -> list[str]:
    """Each row of ``matrix`` as text; ``digits`` rounds first so that no '-0.00' is shown."""

    def cell(v: float) -> str:
        return format(float(v) if digits is None else round(float(v), digits) + 0.0, fmt)  # -0.0 + 0.0 is 0.0

    return ["  ".join(cell(v) for v in row) for row in matrix]


def show_filter(result, json_out: bool) -> None:
    """The learned matrix beside the target and their difference, with the final MSE (or JSON)."""
    target = result.target.array()
    if json_out:
        emit_json(
            {
                "target": result.target.name,
                "shape": list(target.shape),
                "target_matrix": target.tolist(),
                "initial": result.initial.tolist(),
                "learned": result.learned.tolist(),
                "error": (result.learned - target).tolist(),
                "max_abs_error": result.max_error,
                "mse": result.mse,
                "steps": result.steps,
                "lr": result.lr,
                "momentum": result.momentum,
                "seed": result.seed,
                "images": [str(p) for p in result.images],
                "crop": result.crop,
                "seconds": result.seconds,
                "plot": str(result.plot) if result.plot else None,
                "history": [{"step": k, "mse": v} for k, v in enumerate(result.history)],
            }
        )
        return
    for text in result.notes:
        note(text)
    rows = [
        list(r)
        for r in zip(_rows(result.learned, "8.4f", 4), _rows(target, "8.4f", 4), _rows(result.learned - target, "9.1e"))
    ]
    n = len(result.images)
    emit_table(
        Table(
            [("learned", "left"), Column("target", drop=2), Column("learned - target", drop=1)],
            rows,
            title=f"{result.target.name}: learned after {result.steps} steps "
            f"({n} image{'s' if n > 1 else ''}, {result.crop}x{result.crop} crops)",
            footer=[
                f"final MSE {result.mse:.3e}, max |learned - target| {result.max_error:.2e}, "
                f"{result.seconds:.2f} s" + (f"; loss curve in {result.plot}" if result.plot else "")
            ],
        )
    )
