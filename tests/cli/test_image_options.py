"""Options that would do nothing are refused, not ignored; messages say what is wrong; the auto
scale sees pure white as 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, failed, run

MATRIX = "1,3,2,1;2,9,1,1;1,3,2,3;5,6,1,2"


@pytest.fixture
def cat(tmp_path):
    return Path(shutil.copy(SAMPLES / "chelsea.png", tmp_path / "chelsea.png"))


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".csv"])
@pytest.mark.parametrize("command", [["edges"], ["conv", "-k", "box"], ["pool"]])
def test_sixteen_bits_for_a_format_without_bit_depth(cat, command, suffix):
    result = run(*command, cat, "--bit-depth", "16", "-o", cat.parent / f"out{suffix}")
    assert failed(result, "--bit-depth 16 is for PNG files", "keeps the values as they are")
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png"]


def test_sixteen_bits_for_colour_is_refused_before_any_work(cat):
    result = run("edges", cat, "--channels", "rgb", "--bit-depth", "16", "-o", cat.parent / "out.png")
    assert failed(result, "cannot write 3 channel(s) at 16 bits as PNG")
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png"]


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--size", "3"], "--size"),
        (["--stride", "2"], "--stride"),
        (["--padding", "1"], "--padding"),
        (["--ceil"], "--ceil"),
        (["--size", "3", "--ceil"], "--size, --ceil"),
    ],
)
def test_global_pooling_takes_no_window(extra, named):
    assert failed(run("pool", MATRIX, "--global", *extra), "--global pools each whole channel", named)
    assert json.loads(run("pool", MATRIX, "--global", "--json").stdout)["output"] == [9]


def test_no_count_pad_is_for_average_pooling():
    assert failed(run("pool", MATRIX, "--no-count-pad"), "--no-count-pad applies to average pooling")
    result = run("pool", MATRIX, "--mode", "avg", "--no-count-pad", "-p", "1", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["output"][0][0] == 1.0


@pytest.mark.parametrize("command", [["conv", "-k", "box"], ["pool"]])
@pytest.mark.parametrize("word", ["", "  "])
def test_an_empty_typed_matrix_is_called_empty(command, word):
    # it used to be read as the path '', i.e. '.': "'.' is a directory"
    result = run(command[0], word, *command[1:])
    assert failed(result, "INPUT is empty") and "directory" not in result.stderr


@pytest.mark.parametrize("name", ["nothere.csv", "nothere.npy", "kernels/edge.txt"])
def test_a_missing_kernel_file_is_a_missing_file(name):
    result = run("conv", MATRIX, "-k", name)
    assert failed(result, f"--kernel {name}: no such file") and "is not known" not in result.stderr


def test_an_unknown_kernel_name_is_still_one():
    assert failed(run("conv", MATRIX, "-k", "sobelx"), "kernel 'sobelx' is not known (did you mean 'sobel-x'")


@pytest.mark.parametrize("command", [["pool"], ["conv", "-k", "1"]])
def test_auto_scale_keeps_pure_white_in_range(tmp_path, command):
    # float32 grey of white was 1.0000001, so auto took the image for out of range and chose minmax
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = 255
    rgb[:, 4:] = (60, 20, 0)  # grey 0.2, so that minmax would stretch it to black
    Image.fromarray(rgb).save(tmp_path / "half.png")
    result = run(*command, tmp_path / "half.png", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["scale"] == ["clip"] and summary["range"][1] == 1.0
    written = np.asarray(Image.open(summary["outputs"][0]))
    assert written.max() == 255 and written.min() == round(255 * (0.299 * 60 + 0.587 * 20) / 255)
