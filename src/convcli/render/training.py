"""Printing training runs, evaluations and predictions: live progress, tables, JSON.

The progress bar is drawn only when stderr is a terminal and ``--json`` is off; the per-epoch
lines go to stderr too, so stdout holds only the final result (table or JSON).
"""

from __future__ import annotations

import math
import sys

from convcli.render import Table, count, emit_json, emit_table, note


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


def _num(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


class TrainingDisplay:
    """A `convcli.nn.session.Reporter`: a rich progress bar per epoch (loss, accuracy, images/s,
    ETA) on a terminal and one line per finished epoch on stderr; silent with ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self.progress = self.task = None
        self.epoch_no = 0
        self.epochs = 0

    def start(self, epochs, start_epoch, n_train, model, words) -> None:
        self.epochs, self.epoch_no = epochs, start_epoch + 1
        if self.quiet:
            return
        note(f"training {words}")
        note(f"{count(model.n_params())} parameters, {count(n_train)} training images, epochs "
             f"{start_epoch + 1}..{epochs}")
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            from convcli.render import console

            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"),
                                     TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.2%}"),
                                     TextColumn("{task.fields[rate]:,.0f} img/s"), TimeRemainingColumn(),
                                     console=console(stderr=True), transient=True)
            self.progress.start()

    def batch(self, done, total, loss, accuracy) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task("", total=total, epoch=self.epoch_no, epochs=self.epochs,
                                               loss=loss, acc=accuracy, rate=0.0)
        task = self.progress.tasks[self.task]
        rate = done / task.elapsed if task.elapsed else 0.0
        self.progress.update(self.task, completed=done, loss=loss, acc=accuracy, rate=rate)

    def epoch(self, record) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.epoch_no = record.epoch + 1
        if not self.quiet:
            note(f"epoch {record.epoch}/{self.epochs}  lr {record.lr:.3g}  loss {record.train_loss:.4f}  "
                 f"train {_pct(record.train_accuracy)}  val loss {_num(record.val_loss)}  "
                 f"val {_pct(record.val_accuracy)}  {record.seconds:.1f} s  {record.images_per_second:,.0f} img/s")

    def close(self) -> None:
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

    return {"n": ev.n, "loss": ev.loss, "accuracy": ev.accuracy, "confusion": ev.confusion.tolist(),
            "per_class": [{"class": n, "precision": clean(p), "recall": clean(r), "support": int(s)}
                          for n, p, r, s in zip(names, ev.precision, ev.recall, ev.confusion.sum(axis=1))]}


def show_training(result, json_out: bool) -> None:
    """The history table, the final test accuracy and the confusion matrix (or JSON)."""
    if json_out:
        doc = {"spec": result.words, "params": result.n_params, "config": result.config.to_dict(),
               "data": result.data, "history": result.history, "interrupted": result.interrupted,
               "checkpoint": str(result.output) if result.output else None,
               "test_accuracy": result.test.accuracy if result.test else None}
        if result.test:
            doc["test"] = _evaluation_dict(result.test, result.class_names)
        emit_json(doc)
        return
    rows = [[str(h["epoch"]), f"{h['lr']:.3g}", _num(h["train_loss"]), _pct(h["train_accuracy"]),
             _num(h["val_loss"]), _pct(h["val_accuracy"]), f"{h['seconds']:.1f}",
             f"{h['images_per_second']:,.0f}"] for h in result.history]
    emit_table(Table([("epoch", "right"), ("lr", "right"), ("loss", "right"), ("train acc", "right"),
                      ("val loss", "right"), ("val acc", "right"), ("seconds", "right"), ("img/s", "right")],
                     rows, title="Training history"))
    if result.interrupted:
        done = result.history[-1]["epoch"] if result.history else 0
        kept = f"; {result.output} holds epoch {done}" if result.output and done else ""
        note(f"interrupted after {done} complete epoch{'s' if done != 1 else ''}{kept}")
        return
    note(f"test accuracy {_pct(result.test.accuracy)} on {count(result.test.n)} images"
         + (f"; saved {result.output}" if result.output else ""))
    emit_table(_confusion_table(result.test.confusion, result.class_names, "Confusion matrix (test)"))


def show_evaluation(result, json_out: bool) -> None:
    """Accuracy, per-class precision and recall, and the confusion matrix of ``convcli evaluate``."""
    ev, names = result.evaluation, result.class_names
    if json_out:
        emit_json({"checkpoint": str(result.path), "data": result.data, **_evaluation_dict(ev, names)})
        return
    support = ev.confusion.sum(axis=1)
    rows = [[n, _pct(p), _pct(r), str(s)] for n, p, r, s in zip(names, ev.precision, ev.recall, support)]
    emit_table(Table([("class", "left"), ("precision", "right"), ("recall", "right"), ("support", "right")],
                     rows, title=f"{result.path} on {result.data} (test part)",
                     footer=[f"accuracy {_pct(ev.accuracy)} on {count(ev.n)} images, loss {ev.loss:.4f}"]))
    emit_table(_confusion_table(ev.confusion, names, "Confusion matrix"))


def show_predictions(results: list[dict], json_out: bool) -> None:
    """One row per image: the prediction and the top-k classes with probabilities."""
    if json_out:
        emit_json(results)
        return
    rows = [[r["file"], r["prediction"], "  ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])]
            for r in results]
    emit_table(Table([("file", "left"), ("prediction", "left"), ("top classes (probability)", "left")], rows))
