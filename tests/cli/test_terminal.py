"""convcli on a terminal: the live displays and the rich tables, as a user at an 80-column
terminal sees them. CliRunner pipes everything, so the code that only runs on a terminal is
tested here: every command once under a pseudo-terminal, and every table in-process at 80 and
100 columns."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from convcli.render.emit import Column, Table, emit_table
from convcli.render.training import TrainingDisplay
from convcli.training.loop import EpochRecord

from conftest import PHOTOS, REPO, grey_png, run

SMALL = ["8x8x1", "conv:4,f=3", "relu", "flatten", "fc:10"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, so convcli draws its rich tables and progress bars."""

    def isatty(self) -> bool:
        return True


def at_width(monkeypatch, width: int, *args) -> str:
    """``convcli ARGS`` in-process with stdout and stderr on a terminal ``width`` columns wide;
    what it printed on stdout, escape sequences removed."""
    from convcli.cli.app import app

    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("LINES", "24")
    assert app([str(a) for a in args], prog_name="convcli", standalone_mode=False) in (None, 0)
    return ANSI.sub("", out.getvalue())


def column_text(table: str) -> list[str]:
    """Each column of a drawn table, its pieces joined over every line, so that a cell folded onto
    several lines reads as one string again."""
    columns: list[str] = []
    for line in table.splitlines():
        if line.startswith(("│", "┃")):
            cells = re.split("[│┃]", line)[1:-1]
            columns += [""] * (len(cells) - len(columns))
            for k, cell in enumerate(cells):
                columns[k] += cell.strip()
    return columns


def fits(text: str, width: int | None = None) -> None:
    """Nothing cut with an ellipsis, and no line wider than ``width`` (lines that convcli writes
    itself, such as notes on stderr, are left to the terminal to wrap)."""
    assert "…" not in text, text
    if width is not None:
        assert max(map(len, text.splitlines()), default=0) <= width, text


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A photo and a digit in a directory whose path alone takes most of an 80-column line."""
    folder = tmp_path_factory.mktemp("a-directory-name-long-enough-to-crowd-a-table")
    photo = folder / "chelsea.png"
    shutil.copy(PHOTOS[1], photo)
    one = np.zeros((28, 28), np.uint8)
    one[4:24, 12:16] = 255
    return SimpleNamespace(folder=folder, photo=photo, digit=grey_png(folder / "one.png", one))


# --- the live displays ------------------------------------------------------------------------


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


# --- every table at 80 and 100 columns ------------------------------------------------------

WIDTHS = [80, 100]


def _layer_words(layers: list[dict]):
    for layer in layers:
        yield layer["word"]
        for branch in layer.get("children", []):
            yield from _layer_words(branch["layers"])


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "args",
    [
        ["shape-calc", "googlenet", "-e"],
        ["params", "mnist-inception", "-e"],
        ["params", "vgg16-bn", "--keras"],
        ["flops", "googlenet", "-e", "--include", "all"],
    ],
    ids=" ".join,
)
def test_network_tables_keep_every_layer_word_whole(args, width, monkeypatch):
    # the JSON always lists the layers inside blocks (--expand is for tables only)
    piped = [a for a in args if a != "-e"]
    words = set(_layer_words(json.loads(run(*piped, "--json").stdout)["layers"]))
    text = at_width(monkeypatch, width, *args)
    fits(text, width)
    lines = text.splitlines()
    assert [w for w in words if not any(f" {w} " in line for line in lines)] == [], text


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("layer", ["conv:32,f=5,p=same", "inception:64,96-128,16-32,32"])
def test_compare_table_keeps_every_layer_word_whole(layer, width, monkeypatch):
    doc = json.loads(run("flops", "compare", "28x28x192", layer, "--json").stdout)
    words = {w for design in doc.values() if isinstance(design, dict) for w in design["layers"]}
    text = at_width(monkeypatch, width, "flops", "compare", "28x28x192", layer)
    fits(text, width)
    assert [w for w in words if not any(f" {w} " in line for line in text.splitlines())] == [], text


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("args", [["params", "--list"], ["conv", "--list-kernels"]], ids=" ".join)
def test_lists_keep_every_name_whole(args, width, monkeypatch):
    names = [item["name"] for item in json.loads(run(*args, "--json").stdout)]
    text = at_width(monkeypatch, width, *args)
    fits(text, width)
    assert [n for n in names if not any(line.startswith(f"│ {n} ") for line in text.splitlines())] == [], text


@pytest.mark.parametrize("width", WIDTHS)
def test_image_tables_keep_every_path(width, files, monkeypatch):
    """A path may fold onto two lines where nothing else makes room, but is never cut."""
    outputs = [files.folder / name for name in ("e.png", "e_panel.png", "r.tif", "p.png")]
    for args, written in [
        (["edges", files.photo, "--all", "-o", outputs[0]], outputs[:2]),
        (["conv", files.photo, "-k", "sobel-x", "-k", "sobel-y", "-o", outputs[2]], outputs[2:3]),
        (["pool", files.photo, "-o", outputs[3]], outputs[3:]),
    ]:
        text = at_width(monkeypatch, width, *args)
        fits(text, width)
        columns = column_text(text)
        assert str(files.photo) in columns[0], text
        assert all(str(path) in columns[-1] for path in written), text


@pytest.mark.parametrize("width", WIDTHS)
def test_training_tables(width, files, monkeypatch):
    checkpoint = files.folder / f"digits-checkpoint-{width}.npz"
    text = at_width(monkeypatch, width, "train", *SMALL, "--epochs", 2, "-o", checkpoint)
    fits(text, width)
    assert "Training history" in text and "Confusion matrix" in text and "Summary" in text
    text = at_width(monkeypatch, width, "evaluate", checkpoint)
    fits(text, width)
    title = text.split("┏")[0]  # above the table, as wide as the terminal
    assert str(checkpoint) in title.replace("\n", ""), text
    text = at_width(monkeypatch, width, "predict", checkpoint, files.digit, files.photo)
    fits(text, width)
    assert str(files.digit) in column_text(text)[0] and str(files.photo) in column_text(text)[0], text


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kernel", ["sobel-x", "gaussian-5"])
def test_filter_table(kernel, width, files, monkeypatch):
    text = at_width(monkeypatch, width, "train-filter", files.photo, "-t", kernel, "--steps", 3, "--size", 32)
    fits(text, width)
    assert "learned" in text


def test_piped_tables_are_not_narrowed(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lines = run("params", "--list").stdout.splitlines()
    for item in json.loads(run("params", "--list", "--json").stdout):
        [line] = [line for line in lines if line.startswith(item["name"] + " ")]
        assert f"{item['description']} " in line and line.endswith(f"  {item['source']}"), line


# --- the layout rules, on hand-made tables -----------------------------------------------------


def _draw(table: Table, width: int, monkeypatch) -> str:
    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("COLUMNS", str(width))
    emit_table(table)
    return ANSI.sub("", out.getvalue())


def test_columns_are_dropped_in_their_order_and_said_so(monkeypatch):
    table = Table(
        [("name", "left"), Column("second", drop=2), Column("first", drop=1), Column("notes", wrap=True)],
        [["a-name-to-type", "x" * 20, "y" * 20, "some words that may wrap"]],
    )
    wide = _draw(table, 100, monkeypatch)
    assert "x" * 20 in wide and "y" * 20 in wide and "left out" not in wide
    narrow = _draw(table, 50, monkeypatch)
    fits(narrow, 50)
    assert "x" * 20 in narrow and "y" * 20 not in narrow and "(first: left out to fit 50 columns)" in narrow
    assert "│ a-name-to-type │" in narrow
    tiny = _draw(table, 30, monkeypatch)
    fits(tiny, 30)
    assert "(second, first: left out" in tiny and column_text(tiny)[0] == "namea-name-to-type"


def test_headers_break_before_columns_are_dropped(monkeypatch):
    table = Table([("name", "left"), Column("a long header over numbers", "right", drop=1)], [["abc", "1.5"]])
    text = _draw(table, 20, monkeypatch)
    fits(text, 20)
    assert "left out" not in text and "1.5" in text and "numbers" in text


def test_cells_are_text_not_markup(monkeypatch):
    text = _draw(Table([("file", "left")], [["[bold]draft[/bold].png"]], title="[red]x[/red]"), 80, monkeypatch)
    assert "[bold]draft[/bold].png" in text and "[red]x[/red]" in text


# --- every command on a pseudo-terminal, 80 columns -----------------------------------------


def on_pty(*args, columns: int = 80) -> tuple[int, str]:
    """``python -m convcli ARGS`` from this tree with stdin, stdout and stderr on a pseudo-terminal
    ``columns`` wide; the exit code and everything it printed, escape sequences removed."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    env |= {"COLUMNS": str(columns), "LINES": "24", "TERM": "xterm", "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "convcli", *map(str, args)]
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while select.select([master], [], [], 60)[0]:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(), ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def trained(files):
    """``convcli train`` on a pseudo-terminal, two epochs: what it printed, and its checkpoint."""
    checkpoint = files.folder / "digits-checkpoint.npz"
    code, text = on_pty("train", *SMALL, "--epochs", 2, "-o", checkpoint)
    return SimpleNamespace(code=code, text=text, checkpoint=checkpoint)


PTY_COMMANDS = {
    "shape-calc one layer": ["shape-calc", "-n", 224, "-f", 3, "-s", 2, "-p", "same", "--convention", "tf"],
    "shape-calc network": ["shape-calc", "googlenet", "-e"],
    "params": ["params", "mnist-inception", "-e"],
    "params --list": ["params", "--list"],
    "flops": ["flops", "resnet50", "--include", "all"],
    "flops compare": ["flops", "compare", "28x28x192", "inception:64,96-128,16-32,32"],
    "edges": ["edges", "{photo}", "--all", "-o", "{folder}/chelsea-edges.png"],
    "conv image": ["conv", "{photo}", "-k", "sobel-x", "-k", "sobel-y", "-o", "{folder}/responses.tif"],
    "conv matrix": ["conv", "3,0,1;1,5,8;2,7,2", "-k", "1,0;0,-1"],
    "pool": ["pool", "{photo}", "--size", 4, "--mode", "avg", "-o", "{folder}/small.png"],
    "train-filter": ["train-filter", "{photo}", "-t", "sobel-x", "--steps", 20, "--size", 64],
    "draw": ["draw", "googlenet", "--expand", "-o", "{folder}/googlenet.svg", "-o", "{folder}/googlenet.png"],
    "shape-calc --animate": ["shape-calc", "-n", 7, "-f", 3, "-s", 2, "-p", 1, "--animate", "{folder}/conv.gif"],
    "export": ["export", "mnist-resnet", "-o", "{folder}/resnet.py"],
}


@pytest.mark.parametrize("args", PTY_COMMANDS.values(), ids=PTY_COMMANDS)
def test_command_on_a_terminal(args, files):
    code, text = on_pty(*(str(a).format(**vars(files)) for a in args))
    assert code == 0 and "Traceback" not in text, text
    fits(text)


def test_train_on_a_terminal(trained):
    assert trained.code == 0 and "Traceback" not in trained.text, trained.text
    assert "epoch 2/2  lr" in trained.text and "Summary" in trained.text, trained.text
    fits(trained.text)


def test_train_with_torch_on_a_terminal(files):
    """The same live display when PyTorch computes."""
    pytest.importorskip("torch")
    code, text = on_pty("train", *SMALL, "--epochs", 2, "--backend", "torch", "-o", files.folder / "torch.npz")
    assert code == 0 and "Traceback" not in text, text
    assert "epoch 2/2  lr" in text and "Summary" in text and "trained by torch on cpu" in text, text
    fits(text)


@pytest.mark.parametrize("command", ["evaluate", "predict", "features"])
def test_checkpoint_commands_on_a_terminal(command, trained, files):
    extra = {"evaluate": [], "predict": [files.digit], "features": [files.digit, "-o", f"{files.folder}/seen"]}
    code, text = on_pty(command, trained.checkpoint, *extra[command])
    assert code == 0 and "Traceback" not in text, text
    fits(text)
    if command == "features":
        return
    if command == "evaluate":  # the title, wrapped by the terminal
        assert str(trained.checkpoint) in "".join(text.split("┏")[0].split()), text
    else:
        assert str(files.digit) in column_text(text)[0], text


def test_every_command_is_tried_on_a_terminal():
    from convcli.cli.app import COMMANDS

    tried = {args[0] for args in PTY_COMMANDS.values()} | {"train", "evaluate", "predict", "features"}
    assert tried == set(COMMANDS)
