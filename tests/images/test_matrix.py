"""Matrices typed in the shell, read from files and stdin, and printed (convcli.images.matrix)."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convcli.errors import InputError
from convcli.images.matrix import (
    MatrixInput,
    format_matrix,
    is_matrix_text,
    parse_matrix,
    read_matrix,
)

COURSE = [[3, 0, 1], [1, 5, 8], [2, 7, 2]]


@pytest.mark.parametrize(
    "text",
    [
        "3,0,1;1,5,8;2,7,2",
        "3 0 1; 1 5 8; 2 7 2",
        "3, 0, 1 ;1,5,8;2,7,2;",
        "3 0 1\n1 5 8\n\n2 7 2\n",
    ],
)
def test_separators(text):
    parsed = parse_matrix(text)
    assert parsed.integer and parsed.array.dtype == np.int64
    assert parsed.array.tolist() == COURSE


def test_floats_make_a_float_matrix():
    parsed = parse_matrix("1,-0.5;2e1,.25")
    assert not parsed.integer and parsed.array.dtype == np.float64
    np.testing.assert_array_equal(parsed.array, [[1, -0.5], [20, 0.25]])


def test_channels_stack_into_c_h_w():
    parsed = parse_matrix("1,2;3,4|5,6;7,8|0,0;0,1")
    assert parsed.array.shape == (3, 2, 2)
    assert parsed.array[1].tolist() == [[5, 6], [7, 8]]


@pytest.mark.parametrize(
    "text, match",
    [
        ("3,0,1;1,5;2,7,2", "ragged rows: row 2 has 2 values but row 1 has 3"),
        ("", "the matrix is empty"),
        (" ; ;", "the matrix is empty"),
        ("1,2|", "channel 2 is empty"),
        ("1,2;3,4|5,6", "channel 2 is 1 x 2 but channel 1 is 2 x 2"),
        ("1,x,3", "non-numeric value 'x' in row 1"),
        ("1,2;3,4o", "non-numeric value '4o' in row 2"),
        ("1,,3", "empty value in row 1"),
        ("1,nan", "value 'nan' in row 1 is not finite"),
        ("1;-inf", "value '-inf' in row 2 is not finite"),
        ("99999999999999999999", "does not fit in 64 bits"),
    ],
)
def test_bad_text_names_the_value(text, match):
    with pytest.raises(InputError, match=match) as caught:
        parse_matrix(text)
    assert repr(text) in str(caught.value)  # the message quotes the matrix


def test_is_matrix_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_matrix_text("3,0,1;1,5,8;2,7,2")
    assert is_matrix_text("1 2 3") and is_matrix_text("-4.5") and is_matrix_text("1|2")
    assert is_matrix_text("1,x")  # a separator makes it a matrix, to be reported as bad
    assert not is_matrix_text("photo2.png")
    assert not is_matrix_text("edges") and not is_matrix_text("-")
    (tmp_path / "1,2").write_text("5")
    assert not is_matrix_text("1,2")  # an existing file wins


def test_read_typed_text_and_missing_file(tmp_path):
    assert read_matrix("3,0,1;1,5,8;2,7,2").array.tolist() == COURSE
    with pytest.raises(InputError, match=r"kernel\.csv: no such file, and not a matrix"):
        read_matrix(str(tmp_path / "kernel.csv"))


def test_read_stdin():
    parsed = read_matrix("-", stdin=io.StringIO("3 0 1\n1 5 8\n2 7 2\n"))
    assert parsed == MatrixInput(parsed.array, True, "standard input")
    assert parsed.array.tolist() == COURSE
    with pytest.raises(InputError, match="standard input: the matrix is empty"):
        read_matrix("-", stdin=io.StringIO(""))


def test_read_csv_and_txt_with_comments(tmp_path):
    (tmp_path / "k.csv").write_text("# course example\n3,0,1\n1,5,8\n2,7,2\n")
    (tmp_path / "k.txt").write_text("3 0 1  # first row\n1 5 8\n2 7 2\n")
    for name in ["k.csv", "k.txt"]:
        parsed = read_matrix(str(tmp_path / name))
        assert parsed.array.tolist() == COURSE and parsed.source == str(tmp_path / name)


def test_read_npy(tmp_path):
    np.save(tmp_path / "i.npy", np.array(COURSE, dtype=np.uint8))
    np.save(tmp_path / "f.npy", np.arange(12, dtype=np.float32).reshape(3, 2, 2) / 2)
    ints, floats = read_matrix(str(tmp_path / "i.npy")), read_matrix(str(tmp_path / "f.npy"))
    assert ints.integer and ints.array.dtype == np.int64 and ints.array.tolist() == COURSE
    assert not floats.integer and floats.array.shape == (3, 2, 2)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.csv", b"", "empty.csv is empty"),
        ("ragged.txt", b"1 2\n3\n", "ragged.txt: ragged rows: row 2 has 1 values"),
        ("word.csv", b"1,2\n3,four\n", "word.csv: non-numeric value 'four' in row 2"),
        ("binary.txt", b"\xff\xfe\x00\x81", "binary.txt: cannot read as text"),
        ("broken.npy", b"\x93NUMPY garbage", "broken.npy: not a readable .npy"),
        ("kernel.json", b"[[1, 2]]", r"kernel.json: matrix files are \.npy \.csv \.txt"),
    ],
)
def test_bad_files_name_the_file(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_matrix(str(tmp_path / name))


@pytest.mark.parametrize(
    "array, match",
    [
        (np.arange(5), r"got shape \(5,\)"),
        (np.zeros((0, 3)), r"got shape \(0, 3\)"),
        (np.array([[1.0, np.inf]]), "NaN or infinite"),
        (np.array([["a", "b"]]), "expected numbers"),
    ],
)
def test_bad_npy_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=r"bad\.npy: .*" + match):
        read_matrix(str(tmp_path / "bad.npy"))


def test_a_directory_is_not_a_matrix(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_matrix(str(tmp_path))


def test_format_integers_right_aligned():
    assert format_matrix(np.array([[3, -10, 0], [1, 5, 120]]), integer=True) == ("  3  -10    0\n  1    5  120")


def test_format_floats_trimmed_to_four_decimals():
    assert format_matrix(np.array([[0.5, 1 / 3], [-2.0, -1e-9]])) == ("   0.5  0.3333\n    -2       0")


def test_format_integer_flag_falls_back_when_values_are_not_whole():
    assert format_matrix(np.array([[2.0, 4.0]]), integer=True) == "2  4"
    assert format_matrix(np.array([[2.5, 4.0]]), integer=True) == "2.5    4"


def test_format_channels_with_headers():
    assert format_matrix(np.arange(8).reshape(2, 2, 2), integer=True) == (
        "channel 0:\n0  1\n2  3\n\nchannel 1:\n4  5\n6  7"
    )


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=st.integers(-(10**6), 10**6)))
def test_printed_integer_matrices_parse_back(array):
    parsed = parse_matrix(format_matrix(array, integer=True))
    assert parsed.integer
    np.testing.assert_array_equal(parsed.array, array)
