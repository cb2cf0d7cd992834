"""Loading, splitting and normalising the digit data sets (convcli.training.datasets, with the
IDX and .npz loaders of convcli.training.loaders and the built-in digits of convcli.training.digits)."""

from __future__ import annotations

import csv
import gzip
import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.errors import DataError
from convcli.training.datasets import (
    data_files,
    load_data,
    load_image_folder,
    load_path,
    make_splits,
    normalization_stats,
    resolve_data,
    resolve_test,
    stratified_split,
)
from convcli.training.digits import load_digits
from convcli.training.loaders import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, Dataset, load_mnist_dir, load_npz, read_idx

from conftest import SHARED

DATA = SHARED / "data"
MNIST_DIR = DATA / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(), reason=f"real MNIST files not found in {MNIST_DIR}"
)

# Published class counts (shared/data/README.md; MNIST's training labels as LeCun distributes them).
DIGITS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file written independently of the reader: big-endian magic, sizes, then the bytes."""
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(
    directory: Path, n_train: int = 12, n_test: int = 5, gz: bool = True, sep: str = "-"
) -> dict[str, np.ndarray]:
    """Four small IDX files of random 6x5 images; returns the arrays written."""
    rng = np.random.default_rng(7)
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, 6, 5)),
        "train-labels": np.arange(n_train) % 10,
        "t10k-images": rng.integers(0, 256, (n_test, 6, 5)),
        "t10k-labels": np.arange(n_test) % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        kind = "idx3" if array.ndim == 3 else "idx1"
        data = idx_bytes(array, IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC)
        name = f"{stem}{sep}{kind}-ubyte"
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


# --- digits -------------------------------------------------------------------------------------


def test_digits_shape_dtype_and_class_counts():
    d = load_digits()
    assert d.images.shape == (1797, 1, 8, 8) and d.images.dtype == np.float32
    assert d.labels.dtype == np.int64 and d.class_names == tuple("0123456789")
    assert d.images.min() == 0 and d.images.max() == 1
    assert np.bincount(d.labels).tolist() == DIGITS_COUNTS


def test_digits_resource_is_the_published_file():
    data = resources.files("convcli").joinpath("resources/digits.csv.gz").read_bytes()
    assert len(data) == 57523
    assert hashlib.md5(data).hexdigest() == "9b335364a7bfd63947c7480a5bd51f2d"
    licence = resources.files("convcli").joinpath("resources/DIGITS-LICENSE.txt").read_text()
    assert "CC BY 4.0" in licence and "Alpaydin" in licence and "Kaynak" in licence


def test_digits_values_are_the_csv_divided_by_16():
    data = resources.files("convcli").joinpath("resources/digits.csv.gz").read_bytes()
    rows = list(csv.reader(gzip.decompress(data).decode().splitlines()))
    d = load_digits()
    for i in (0, 1, 900, 1796):
        assert (d.images[i, 0] * 16).astype(int).ravel().tolist() == [int(v) for v in rows[i][:64]]
        assert d.labels[i] == int(rows[i][64])


def test_digits_split_is_stratified_and_the_test_part_ignores_the_seed():
    a = resolve_data("digits", validation=0.1, seed=0)
    b = resolve_data("DIGITS", validation=0.1, seed=1)
    assert np.array_equal(a.test.images, b.test.images)
    assert not np.array_equal(a.validation.labels, b.validation.labels) or not np.array_equal(
        a.validation.images, b.validation.images
    )
    test_counts = np.bincount(a.test.labels, minlength=10)
    assert test_counts.tolist() == [round(0.2 * c) for c in DIGITS_COUNTS]
    rest = np.array(DIGITS_COUNTS) - test_counts
    assert np.bincount(a.validation.labels).tolist() == [round(0.1 * c) for c in rest]
    assert len(a.train) + len(a.validation) + len(a.test) == 1797
    assert a.test_fraction == 0.2 and a.test_seed == 0 and a.train.name == "digits"
    assert (a.train.name, a.train.part, a.validation.part, a.test.part) == ("digits", "train", "validation", "test")


# --- MNIST from the real files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_dir(MNIST_DIR)


@needs_mnist
def test_mnist_official_split_and_counts(mnist):
    train, test = mnist
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert train.images.min() == 0 and train.images.max() == 1


@needs_mnist
def test_mnist_training_statistics_match_the_published_values(mnist):
    mean, std = normalization_stats(mnist[0].images)
    assert round(mean, 4) == 0.1307 and round(std, 4) == 0.3081
    splits = make_splits(*mnist, validation=0.0)
    assert (round(splits.mean, 4), round(splits.std, 4)) == (0.1307, 0.3081)
    assert splits.test_fraction is None and len(splits.test) == 10000 and len(splits.train) == 60000


@needs_mnist
def test_mnist_validation_is_carved_from_train_by_seed(mnist):
    splits = make_splits(*mnist, validation=0.1, seed=3)
    assert len(splits.train) + len(splits.validation) == 60000
    expected = [round(0.1 * c) for c in MNIST_TRAIN_COUNTS]
    assert np.bincount(splits.validation.labels).tolist() == expected
    assert splits.mean == pytest.approx(splits.train.images.mean(dtype=np.float64), abs=1e-9)


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz, sep", [(True, "-"), (False, "-"), (True, "."), (False, ".")])
def test_idx_directory_raw_gz_and_dotted_names(tmp_path, gz, sep):
    arrays = write_mnist(tmp_path, gz=gz, sep=sep)
    train, test = load_mnist_dir(tmp_path)
    assert train.images.shape == (12, 1, 6, 5) and len(test) == 5
    assert np.array_equal(train.images[:, 0] * 255, arrays["train-images"])
    assert np.array_equal(test.labels, arrays["t10k-labels"])
    assert load_path(tmp_path)[0].images.shape == (12, 1, 6, 5)


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(4), IDX_LABELS_MAGIC))
    with pytest.raises(DataError, match=r"labels: magic number 2049 is not 2051"):
        read_idx(path, IDX_IMAGES_MAGIC)


def test_idx_truncated(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 4, 4)), IDX_IMAGES_MAGIC)[:-5]))
    with pytest.raises(DataError, match=r"images.gz: header says shape \(3, 4, 4\).*truncated"):
        read_idx(path, IDX_IMAGES_MAGIC)
    for header in (IDX_IMAGES_MAGIC.to_bytes(4, "big") + b"\0\0", b"\0\0"):
        (tmp_path / "images").write_bytes(header)
        with pytest.raises(DataError, match="truncated IDX header"):
            read_idx(tmp_path / "images", IDX_IMAGES_MAGIC)


def test_idx_broken_gzip(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(100), IDX_LABELS_MAGIC))[:30])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: cannot read"):
        read_idx(path, IDX_LABELS_MAGIC)


def test_idx_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.arange(4), IDX_LABELS_MAGIC)))
    with pytest.raises(DataError, match=r"holds 5 images but .*t10k-labels.* holds 4 labels"):
        load_mnist_dir(tmp_path)


def test_idx_missing_file_is_named(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing train-labels-idx1-ubyte\[.gz\]"):
        load_path(tmp_path)


def test_idx_label_out_of_range(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.array([0, 1, 2, 3, 12]), IDX_LABELS_MAGIC))
    )
    with pytest.raises(DataError, match="labels range 0..12"):
        load_mnist_dir(tmp_path)


# --- npz ---------------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (8, 7, 7), np.uint8)
    x_test = rng.integers(0, 256, (3, 7, 7), np.uint8)
    y_train, y_test = np.arange(8) % 10, np.array([9, 0, 4])
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for train, test in (load_npz(tmp_path / "mnist.npz"), load_path(tmp_path / "mnist.npz"), load_path(tmp_path)):
        assert np.array_equal(np.rint(train.images[:, 0] * 255).astype(np.uint8), x_train)
        assert np.array_equal(np.rint(test.images[:, 0] * 255).astype(np.uint8), x_test)
        assert train.labels.tolist() == y_train.tolist() and test.labels.tolist() == [9, 0, 4]


def test_npz_bad_contents(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 3, 3), np.uint8), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match="a.npz: missing arrays x_test, y_test"):
        load_npz(tmp_path / "a.npz")
    np.savez(
        tmp_path / "b.npz",
        x_train=np.full((2, 3, 3), 2.0),
        y_train=np.zeros(2, int),
        x_test=np.zeros((1, 3, 3)),
        y_test=np.zeros(1, int),
    )
    with pytest.raises(DataError, match="b.npz: images of dtype float64 must be uint8 or floats"):
        load_npz(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="c.npz: not a readable .npz"):
        load_path(tmp_path / "c.npz")


# --- image folders -------------------------------------------------------------------------------


def save_png(path: Path, pixels: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), mode).save(path)


def test_image_folder_classes_sorted_and_values_scaled(tmp_path):
    ramp = np.arange(20).reshape(4, 5) * 12
    save_png(tmp_path / "seven" / "a.png", ramp)
    save_png(tmp_path / "one" / "b.png", 255 - ramp)
    save_png(tmp_path / "one" / "c.png", np.zeros((4, 5)))
    rgb = np.zeros((4, 5, 3))
    rgb[..., 0] = 200  # pure red: Rec.601 luma 0.299 * 200 = 59.8, kept in float (not rounded to 60)
    save_png(tmp_path / "seven" / "d.png", rgb, "RGB")
    (tmp_path / "seven" / "notes.txt").write_text("ignored")
    d = load_image_folder(tmp_path)
    assert d.class_names == ("one", "seven") and d.labels.tolist() == [0, 0, 1, 1]
    assert d.images.shape == (4, 1, 4, 5) and d.images.dtype == np.float32
    assert np.allclose(d.images[0, 0], (255 - ramp) / 255)
    assert np.allclose(d.images[2, 0], ramp / 255)
    assert np.allclose(d.images[3, 0] * 255, 59.8)
    splits = resolve_data(str(tmp_path), validation=0.0, test_fraction=0.5)
    assert sorted(splits.test.labels.tolist()) == [0, 1] and len(splits.train) == 2


def test_image_folder_size_mismatch_and_bad_files(tmp_path):
    save_png(tmp_path / "a" / "1.png", np.zeros((4, 4)))
    save_png(tmp_path / "b" / "2.png", np.zeros((5, 4)))
    with pytest.raises(DataError, match=r"2.png: size 5 x 4 \(H x W\) differs from 4 x 4 of .*1.png"):
        load_path(tmp_path)
    (tmp_path / "b" / "2.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="2.png is not an image convcli reads"):
        load_image_folder(tmp_path)
    (tmp_path / "b" / "2.png").unlink()
    with pytest.raises(DataError, match="b: class directory has no images"):
        load_image_folder(tmp_path)


def test_empty_missing_and_unreadable_paths(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="empty directory"):
        load_path(tmp_path)
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="no data found"):
        load_data(str(tmp_path))
    with pytest.raises(DataError, match="expected a directory of MNIST IDX files"):
        load_path(tmp_path / "readme.txt")
    with pytest.raises(DataError, match="nope: no such file or directory"):
        load_data(str(tmp_path / "nope"))

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(DataError, match="cannot list the directory .Permission denied"):
        load_path(tmp_path)


# --- splits and statistics -----------------------------------------------------------------------


def test_stratified_split_is_deterministic_disjoint_and_proportional():
    labels = np.repeat(np.arange(4), [10, 20, 31, 7])
    kept, held = stratified_split(labels, 0.3, seed=5)
    again = stratified_split(labels, 0.3, seed=5)
    other = stratified_split(labels, 0.3, seed=6)
    assert np.array_equal(kept, again[0]) and np.array_equal(held, again[1])
    assert not np.array_equal(held, other[1])
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(labels)))
    assert np.bincount(labels[held]).tolist() == [3, 6, 9, 2]
    assert np.all(np.diff(held) > 0) and np.all(np.diff(kept) > 0)


def test_make_splits_fractions_and_errors():
    images = np.zeros((6, 1, 2, 2), np.float32)
    data = Dataset(images, np.arange(6) % 3, ("a", "b", "c"), "tiny")
    splits = make_splits(data, validation=0.0, test_fraction=0.0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (6, 0, 0)
    for bad in (-0.1, 1.0):
        with pytest.raises(DataError, match=f"validation={bad} must be a fraction"):
            make_splits(data, validation=bad)
    with pytest.raises(DataError, match="test_fraction=1.5 must be a fraction"):
        make_splits(data, test_fraction=1.5)
    with pytest.raises(DataError, match="validation=0.9 leaves no training images"):
        make_splits(data, validation=0.9, test_fraction=0.0)
    with pytest.raises(DataError, match="images .* and labels"):
        Dataset(images, np.zeros(5, np.int64), ("a",), "broken")


def test_normalization_stats_against_numpy():
    x = np.random.default_rng(1).random((9000, 1, 3, 3), np.float32)
    mean, std = normalization_stats(x)
    assert mean == pytest.approx(np.mean(x, dtype=np.float64), rel=1e-12)
    assert std == pytest.approx(np.std(x.astype(np.float64)), rel=1e-9)
    with pytest.raises(DataError, match="empty training part"):
        normalization_stats(x[:0])


def test_data_files_are_what_the_loaders_read(tmp_path, monkeypatch):
    """The files no output may overwrite: an .npz, IDX files, images of an image folder."""
    assert data_files("digits") == []
    np.savez(tmp_path / "k.npz", x_train=np.zeros((1, 2, 2)))
    assert data_files(str(tmp_path / "k.npz")) == [tmp_path / "k.npz"]
    write_mnist(tmp_path / "idx", gz=True, sep="-")
    assert {p.name for p in data_files(str(tmp_path / "idx")) if p.exists()} == {
        p.name for p in (tmp_path / "idx").iterdir()
    }
    monkeypatch.setenv("CONVCLI_DATA", str(tmp_path / "cache"))
    write_mnist(tmp_path / "cache" / "mnist", gz=False, sep=".")
    assert len([p for p in data_files("mnist") if p.exists()]) == 4
    (tmp_path / "folder" / "0").mkdir(parents=True)
    Image.new("L", (4, 4)).save(tmp_path / "folder" / "0" / "a.png")
    assert tmp_path / "folder" / "0" / "a.png" in data_files(str(tmp_path / "folder"))
    assert data_files(str(tmp_path / "missing")) == []


@pytest.mark.parametrize("fraction, seed", [(0.2, 0), (0.3, 5)])
def test_the_test_part_alone_is_resolve_data_s(fraction, seed):
    """``evaluate`` reads the test part alone: the same images and labels ``train`` tested on."""
    test = resolve_test("digits", test_fraction=fraction, test_seed=seed)
    splits = resolve_data("digits", validation=0.1, seed=3, test_fraction=fraction, test_seed=seed)
    np.testing.assert_array_equal(test.images, splits.test.images)
    np.testing.assert_array_equal(test.labels, splits.test.labels)
