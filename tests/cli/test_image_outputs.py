"""What edges, conv and pool write, and where: never over an input (same path, symlink or hard
link, side outputs included), never more than --max-pixels or the memory allows, refused before
any work and leaving nothing behind; - for standard input and output."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES, failed, run


@pytest.fixture
def cat(tmp_path):
    return Path(shutil.copy(SAMPLES / "chelsea.png", tmp_path / "chelsea.png"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.is_symlink()}


def link(kind: str, target: Path, name: Path) -> Path:
    """``name`` as ``kind``: the target's own path, a symlink to it, or a hard link."""
    if kind == "symlink":
        name.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, name)
    else:
        return target
    return name


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize(
    "command, name",
    [
        (["conv", "{input}", "-k", "2"], "m.npy"),
        (["conv", "{input}", "-k", "1,0;0,1"], "m.csv"),
        (["pool", "{input}"], "m.csv"),
        (["pool", "{input}", "--global"], "m.txt"),
    ],
)
def test_a_matrix_file_is_never_overwritten(tmp_path, command, name, kind):
    source = tmp_path / name
    if name.endswith(".npy"):
        np.save(source, np.arange(16).reshape(4, 4))
    else:
        source.write_text("1,2,3,4\n5,6,7,8\n9,10,11,12\n13,14,15,16\n")
    output = link(kind, source, tmp_path / f"out{source.suffix}")
    before = snapshot(tmp_path)
    args = [source if word == "{input}" else word for word in command]
    assert failed(run(*args, "-o", output), "is also an input")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_a_kernel_file_is_an_input_too(cat, kind):
    kernel = cat.parent / "k.csv"
    kernel.write_text("1,0\n0,-1\n")
    output = link(kind, kernel, cat.parent / "out.csv")
    before = snapshot(cat.parent)
    assert failed(run("conv", cat, "-k", kernel, "-o", output), "is also an input", "k.csv")
    assert snapshot(cat.parent) == before


@pytest.mark.parametrize(
    "options, taken",
    [
        (["--all"], "out_panel.png"),
        (["--orientation"], "out_orientation.png"),
        (["--all", "--orientation"], "out_orientation.png"),
    ],
)
@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_edges_side_outputs_are_checked_before_the_main_one_is_written(cat, options, taken, kind):
    # the input itself is where a side output would go: nothing may be written, not even out.png
    victim = cat.parent / taken
    if kind == "same":
        shutil.copy(cat, victim)
        source = victim
    else:
        link(kind, cat, victim)
        source = cat
    before = snapshot(cat.parent)
    assert failed(run("edges", source, *options, "-o", cat.parent / "out.png"), "is also an input")
    assert snapshot(cat.parent) == before and not (cat.parent / "out.png").exists()


@pytest.mark.parametrize("threshold", [[], ["--threshold", "0.3"]])
def test_edges_output_of_one_input_may_not_be_another_input(cat, threshold):
    # chelsea.png's default output is chelsea_edges.png: here that is the second input
    other = Path(shutil.copy(cat, cat.parent / "chelsea_edges.png"))
    before = snapshot(cat.parent)
    assert failed(run("edges", cat, other, *threshold), "chelsea_edges.png is also an input")
    assert snapshot(cat.parent) == before


def test_conv_kernels_of_one_name_would_write_one_file(cat):
    assert failed(run("conv", cat, "-k", "box", "-k", "box"), "would both write", "chelsea_box.png")
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png"]


# Standard input and output, as ImageMagick spells them: -


def decoded(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.mark.parametrize(
    "command", [["edges"], ["conv", "-k", "sobel-x"], ["pool", "--size", "3"], ["edges", "--threshold", "0.2"]]
)
def test_image_on_stdout_and_summary_on_stderr(cat, command):
    to_file = run(*command, cat, "-o", cat.parent / "file.png")
    assert to_file.exit_code == 0, to_file.stderr
    piped = run(*command, cat, "-o", "-")
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout_bytes == (cat.parent / "file.png").read_bytes()  # the PNG, and nothing else
    assert "chelsea.png" in piped.stderr  # the summary table moved to stderr
    json_piped = run(*command, cat, "-o", "-", "--json")
    assert json_piped.stdout_bytes.startswith(b"\x89PNG") and '"' in json_piped.stderr


@pytest.mark.parametrize("command", [["edges"], ["conv", "-k", "sobel-x"], ["pool", "--size", "3"]])
def test_image_from_stdin(cat, command):
    by_name = run(*command, cat, "-o", cat.parent / "named.png")
    from_stdin = run(*command, "-", "-o", "-", stdin=cat.read_bytes())
    assert from_stdin.exit_code == 0, from_stdin.stderr
    np.testing.assert_array_equal(decoded(from_stdin.stdout_bytes), decoded((cat.parent / "named.png").read_bytes()))
    assert by_name.exit_code == 0


@pytest.mark.parametrize("command", [["edges"], ["conv", "-k", "sobel-x"], ["pool"]])
def test_an_image_from_stdin_needs_an_output_name(cat, command):
    assert failed(run(*command, "-", stdin=cat.read_bytes()), "standard input", "-o")
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png"]


def test_an_image_from_stdin_into_a_directory(cat, tmp_path):
    (tmp_path / "out").mkdir()
    assert run("edges", "-", "-o", tmp_path / "out", stdin=cat.read_bytes()).exit_code == 0
    assert run("conv", "-", "-k", "box", "-o", tmp_path / "out", stdin=cat.read_bytes()).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["stdin_box.png", "stdin_edges.png"]


def test_a_matrix_from_stdin_still_reads_as_text():
    result = run("pool", "-", "--size", "2", stdin="1 3 2 1\n2 9 1 1\n1 3 2 3\n5 6 1 2\n")
    assert result.exit_code == 0 and result.stdout == "9  2\n6  3\n"


def test_stdout_takes_one_image_and_no_side_outputs(cat):
    assert failed(run("edges", cat, cat, "-o", "-"), "-o - writes one image", "2 inputs")
    assert failed(run("edges", cat, "--all", "-o", "-"), "--all and --orientation", "-o FILE")
    assert failed(run("edges", "-", "-", "-o", "x.png", stdin=b""), "standard input (-) can be read once")
    assert failed(run("conv", "-", "-k", "box", stdin=b"\x89PNG\r\n\x1a\n broken"), "standard input")


# Sizes checked before anything is allocated or written.


@pytest.mark.parametrize(
    "args, words",
    [
        (["conv", "1,2;3,4", "-k", "1", "-p", "100000"], ["200,002 x 200,002 = 40,000,800,004 pixels", "--max-pixels"]),
        (["conv", "1,2;3,4", "-k", "1,1;1,1", "-p", "full", "-d", "100000000"], ["100,000,002 x 100,000,002"]),
        (
            ["pool", "1,2;3,4", "-f", "2000000", "-p", "1000000"],
            ["would need", "GiB of memory", "2,000,002 x 2,000,002"],
        ),
    ],
)
def test_huge_padding_or_dilation_is_refused_before_allocating(args, words):
    assert failed(run(*args), *words)


def test_max_pixels_limits_outputs_too(cat):
    # 300 x 451 = 135,300 pixels in, 498 x 649 = 323,202 out with 100 pixels of padding all round
    result = run("conv", cat, "-k", "box", "-p", "100", "--max-pixels", "200000", "-o", cat.parent / "big.tif")
    assert failed(result, "498 x 649 = 323,202 pixels", "--max-pixels limit of 200,000")
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png"]
    assert run("conv", cat, "-k", "box", "-p", "100", "-o", cat.parent / "big.tif").exit_code == 0
