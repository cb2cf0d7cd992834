"""convcli on a terminal: the live displays and the rich tables, as a user at an 80-column
terminal sees them. CliRunner pipes everything, so the code that only runs on a terminal is
tested here."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

from convcli.render.training import TrainingDisplay
from convcli.training.loop import EpochRecord


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the display draws its progress bars."""

    def isatty(self) -> bool:
        return True


def _record(epoch: int) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        lr=0.01,
        train_loss=0.5,
        train_accuracy=0.8,
        val_loss=None,
        val_accuracy=None,
        seconds=1.0,
        images_per_second=100.0,
    )


def test_training_display_draws_every_epoch_on_a_terminal(monkeypatch):
    """The second epoch's first batch used to look its task up by id in rich's list of tasks
    (IndexError once the first epoch's task was removed)."""
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    display = TrainingDisplay()
    assert display.live
    display.start(3, 0, 100, SimpleNamespace(n_params=lambda: 42), "8x8x1 flatten fc:10", 420)
    for epoch in (1, 2, 3):
        for done in (50, 100):
            display.batch(done, 100, 0.5, 0.8)
        display.epoch(_record(epoch))
    display.close()
    text = stderr.getvalue()
    assert [f"epoch {k}/3  lr" in text for k in (1, 2, 3)] == [True] * 3, text


def test_download_display_on_a_terminal(monkeypatch):
    """A byte counter per file, and a line per file started and finished."""
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    display = TrainingDisplay(quiet=True)
    for name in ("a.gz", "b.gz"):
        for done in (0, 500, 1000):
            display.download(done, 1000, name)
    display.close()
    text = stderr.getvalue()
    for name in ("a.gz", "b.gz"):
        assert f"downloading {name} (0.0 MB)" in text and f"downloaded {name}" in text, text
