"""Handwritten-digit data for ``convcli train``: loading, splitting and normalisation statistics.

Every loader returns `convcli.training.loaders.Dataset` objects holding float32 images
``(N, 1, H, W)`` scaled to [0, 1] and int64 labels ``(N,)``; the IDX and ``.npz`` loaders live in
`convcli.training.loaders`, the built-in digits in `convcli.training.digits`. `resolve_data`
turns the ``--data`` word into a `DataSplits`:

- ``digits``: the 8x8 UCI digits shipped with convcli (1,797 images, values 0..16, scaled /16).
  It has no official test set, so a stratified 20% is held out with a *fixed* seed (``test_seed``,
  default 0): the test set is the same whatever training seed is used, so runs compare.
- ``mnist``: the four IDX files in ``cache_dir() / "mnist"``, downloaded and checked on first use
  (see `convcli.training.download`); the official 60,000/10,000 train/test split.
- a path: a directory of the four MNIST IDX files (raw or ``.gz``), a Keras-style ``.npz``
  (``x_train``, ``y_train``, ``x_test``, ``y_test``), or an image folder ``root/<class>/*.png``
  (classes sorted by name; split like ``digits``).

The validation part is then carved from the training part, stratified by class, with ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convcli.errors import DataError
from convcli.training.digits import load_digits
from convcli.training.download import ProgressCallback, cache_dir, fetch_mnist
from convcli.training.loaders import Dataset, find_mnist_files, load_mnist_dir, load_npz


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train, validation and test parts, with the statistics a model needs to be saved with.

    ``mean`` and ``std`` are the pixel mean and (population) standard deviation of ``train``
    on the 0-1 scale; normalise every part with them, ``(x - mean) / std``.
    ``test_fraction`` is None when the test part is the data set's official one.
    """

    train: Dataset
    validation: Dataset
    test: Dataset
    mean: float
    std: float
    seed: int
    validation_fraction: float
    test_fraction: float | None
    test_seed: int | None


def load_image_folder(root: Path) -> Dataset:
    """Grey images from ``root/<class>/*.png`` (and the other formats read), classes by name.

    Each file is read by `convcli.images.read.read_image`, as ``predict`` reads a photo (see
    `convcli.training.inference.read_gray`), so a model sees the pixels it was trained on: Rec.601
    grey, EXIF orientation applied, transparency composited onto white, 8-bit values /255 and
    16-bit ones /65535, oversized files refused. All images must have the same size.
    """
    from convcli.errors import InputError
    from convcli.images.read import READ_SUFFIXES, read_image

    classes = sorted(p for p in _list_dir(root) if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class subdirectories; expected root/<class>/*.png")
    images, labels, size = [], [], None
    for label, class_dir in enumerate(classes):
        files = sorted(p for p in _list_dir(class_dir) if p.suffix.lower() in READ_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{class_dir}: class directory has no images ({', '.join(READ_SUFFIXES)})")
        for path in files:
            try:
                pixels = read_image(path, channels="gray").array[0]  # H, W
            except InputError as exc:
                raise DataError(str(exc)) from None
            if pixels.min() < 0 or pixels.max() > 1:  # a floating-point file keeps its values
                raise DataError(
                    f"{path}: values span [{pixels.min():.4g}, {pixels.max():.4g}]; a data set image must lie in [0, 1]"
                )
            if size is None:
                size, first = pixels.shape, path
            elif pixels.shape != size:
                raise DataError(
                    f"{path}: size {pixels.shape[0]} x {pixels.shape[1]} (H x W) differs from "
                    f"{size[0]} x {size[1]} of {first}; all images must be the same size"
                )
            images.append(pixels)
            labels.append(label)
    stack = np.stack(images)[:, None]  # N, 1, H, W
    return Dataset(stack, np.array(labels, np.int64), tuple(p.name for p in classes), str(root))


def _list_dir(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except OSError as exc:
        raise DataError(f"{directory}: cannot list the directory ({exc.strerror or exc})") from None


def load_path(path: Path) -> tuple[Dataset, Dataset | None]:
    """Load a data set from a path, detecting the layout; the test part is None if it has none."""
    if not path.exists():
        raise DataError(f"--data {path}: no such file or directory (and not digits or mnist)")
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        raise DataError(
            f"--data {path}: expected a directory of MNIST IDX files, an .npz archive "
            "or an image folder root/<class>/*.png"
        )
    entries = _list_dir(path)
    if any(found is not None for found in find_mnist_files(path).values()):
        return load_mnist_dir(path)
    if (path / "mnist.npz").is_file():
        return load_npz(path / "mnist.npz")
    if any(p.is_dir() and not p.name.startswith(".") for p in entries):
        return load_image_folder(path), None
    raise DataError(
        f"--data {path}: {'empty directory' if not entries else 'no data found'}; "
        "expected the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...), "
        "an mnist.npz or class subdirectories of images"
    )


def load_data(
    spec: str,
    *,
    data_dir: Path | None = None,
    mirror: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> tuple[Dataset, Dataset | None]:
    """Train and test parts for ``spec``: ``"digits"``, ``"mnist"`` or a path (see module doc).

    For ``mnist``, ``data_dir`` overrides `convcli.training.download.cache_dir`; missing files are
    downloaded from ``mirror`` (see `convcli.training.download.fetch_mnist`). The keywords win over a
    directory of the same name; write ``./mnist`` for that.
    """
    word = spec.strip().lower()
    if word == "digits":
        return load_digits(), None
    if word == "mnist":
        directory = (data_dir or cache_dir()) / "mnist"
        if any(p is None for p in find_mnist_files(directory).values()):
            fetch_mnist(directory, mirror=mirror, progress=progress, timeout=timeout)
        train, test = load_mnist_dir(directory)
        return replace(train, name="mnist"), replace(test, name="mnist")
    return load_path(Path(spec).expanduser())


def data_files(spec: str, data_dir: Path | None = None) -> list[Path]:
    """The files `load_data` may read for ``spec``, as they are now, so that no output overwrites
    one: for a directory (or ``mnist``'s cache directory) its IDX files, an ``mnist.npz`` and
    the files of its class subdirectories; none for the built-in digits."""
    word = spec.strip().lower()
    if word == "digits":
        return []
    root = (data_dir or cache_dir()) / "mnist" if word == "mnist" else Path(spec).expanduser()
    if not root.is_dir():
        return [root] if root.is_file() else []
    files = [p for p in find_mnist_files(root).values() if p is not None] + [root / "mnist.npz"]
    for sub in _list_dir(root):
        if sub.is_dir() and not sub.name.startswith("."):
            files.extend(_list_dir(sub))
    return files


TEST_FRACTION = 0.2
"""The test part of a data set without an official one (drawn with ``test_seed``, default 0)."""


def resolve_data(
    spec: str,
    *,
    validation: float = 0.1,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    test_seed: int = 0,
    data_dir: Path | None = None,
    mirror: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> DataSplits:
    """Load ``spec`` with `load_data` and split it with `make_splits`: the one call ``train`` needs.

    Examples
    --------
    >>> splits = resolve_data("digits", validation=0.1, seed=0)
    >>> len(splits.train), len(splits.validation), len(splits.test)
    (1295, 143, 359)
    """
    train, test = load_data(spec, data_dir=data_dir, mirror=mirror, progress=progress, timeout=timeout)
    return make_splits(train, test, validation=validation, seed=seed, test_fraction=test_fraction, test_seed=test_seed)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)``: ``round(fraction * count)`` of each class held out at random.

    Both index arrays are sorted, so the parts keep the original order.

    >>> kept, held = stratified_split(np.array([0, 0, 0, 0, 1, 1]), 0.5, seed=1)
    >>> len(held), sorted(np.array([0, 0, 0, 0, 1, 1])[held].tolist())
    (3, [0, 0, 1])
    """
    rng = np.random.default_rng(seed)
    held = [
        rng.permutation(np.flatnonzero(labels == c))[: round(fraction * np.sum(labels == c))] for c in np.unique(labels)
    ]
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out


def make_splits(
    train: Dataset,
    test: Dataset | None = None,
    *,
    validation: float = 0.1,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    test_seed: int = 0,
) -> DataSplits:
    """Split into train/validation/test and compute the training part's normalisation statistics.

    When ``test`` is None a stratified ``test_fraction`` of ``train`` becomes the test part,
    drawn with ``test_seed``; then a stratified ``validation`` fraction of what remains is drawn
    with ``seed``. Fractions are in [0, 1) and must leave training images.
    """
    for what, value in (("validation", validation), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise DataError(f"{what}={value} must be a fraction in [0, 1)")
    official = test is not None
    train, test = split_test(train, test, test_fraction, test_seed)
    kept, held = stratified_split(train.labels, validation, seed)
    fit, val = train.subset(kept, "train"), train.subset(held, "validation")
    if len(fit) == 0:
        raise DataError(f"{train.name}: validation={validation} leaves no training images")
    mean, std = normalization_stats(fit.images)
    return DataSplits(
        fit,
        val,
        test,
        mean,
        std,
        seed,
        validation,
        None if official else test_fraction,
        None if official else test_seed,
    )


def split_test(train: Dataset, test: Dataset | None, test_fraction: float, test_seed: int) -> tuple[Dataset, Dataset]:
    """``(train, test)``: the official test part when there is one, else a stratified
    ``test_fraction`` of ``train`` drawn with ``test_seed`` (and the rest of ``train``)."""
    if test is not None:
        return train, test
    kept, held = stratified_split(train.labels, test_fraction, test_seed)
    return train.subset(kept, "train"), train.subset(held, "test")


def resolve_test(
    spec: str, *, test_fraction: float = TEST_FRACTION, test_seed: int = 0, data_dir: Path | None = None
) -> Dataset:
    """The test part `resolve_data` gives for ``spec``, without the validation split and the
    normalisation statistics (``evaluate`` normalises with the checkpoint's).

    >>> len(resolve_test("digits"))
    359
    """
    train, test = load_data(spec, data_dir=data_dir)
    return split_test(train, test, test_fraction, test_seed)[1]


def normalization_stats(images: np.ndarray) -> tuple[float, float]:
    """Pixel mean and population standard deviation of ``images``, accumulated in float64.

    Summed in chunks so MNIST's 47 million pixels need no float64 copy.

    >>> normalization_stats(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32))
    (0.5, 0.5)
    """
    if images.size == 0:
        raise DataError("cannot compute normalisation statistics of an empty training part")
    total = squares = 0.0
    for chunk in np.array_split(images.reshape(len(images), -1), max(1, len(images) // 4096)):
        c = chunk.astype(np.float64)
        total += c.sum()
        squares += np.square(c).sum()
    mean = total / images.size
    return float(mean), float(np.sqrt(max(squares / images.size - mean * mean, 0.0)))
