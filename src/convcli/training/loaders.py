"""Loaders of MNIST's IDX files and of Keras-style ``.npz`` archives, and the `Dataset` every
loader returns: float32 images ``(N, 1, H, W)`` scaled to [0, 1] and int64 labels ``(N,)``.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convcli.errors import DataError

DIGIT_NAMES = tuple(str(k) for k in range(10))
IDX_IMAGES_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions (n, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension (n)
# Standard MNIST file stems; mirrors also spell them "train-images.idx3-ubyte".
MNIST_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one part of a data set.

    Attributes
    ----------
    images : ndarray, float32, ``(N, 1, H, W)``, values in [0, 1]
    labels : ndarray, int64, ``(N,)``, values in ``range(len(class_names))``
    class_names : tuple of str
    name : str
        Where the data came from: ``"digits"``, ``"mnist"`` or the path given.
    part : str
        ``"all"``, ``"train"``, ``"validation"`` or ``"test"``.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    part: str = "all"

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise DataError(
                f"{self.name} ({self.part}): images {self.images.shape} and labels "
                f"{self.labels.shape} are not N images (N, C, H, W) and N labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray, part: str) -> Dataset:
        """The images at ``index`` (a copy), as part ``part`` of the same data set."""
        return Dataset(self.images[index], self.labels[index], self.class_names, self.name, part)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array in an IDX file (raw or gzipped), checking the magic number and the size.

    ``magic`` is `IDX_IMAGES_MAGIC` (gives ``(n, rows, cols)``) or `IDX_LABELS_MAGIC` (``(n,)``).
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); download it again") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = int.from_bytes(data[:4], "big")
    if len(data) >= 4 and found != magic:
        kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(
            f"{path}: magic number {found} is not {magic} (IDX {kind}); "
            "is this the right file, and decompressed correctly?"
        )
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes); download it again")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", ndim, 4))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(
            f"{path}: header says shape {shape}, i.e. {expected:,} bytes, but the file "
            f"holds {len(data):,} bytes (truncated or corrupted); download it again"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def find_mnist_files(directory: Path) -> dict[str, Path | None]:
    """The four MNIST files in ``directory`` by role, None where missing.

    Each may be raw or ``.gz``, spelled ``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``.
    """
    found: dict[str, Path | None] = {}
    for role, stem in MNIST_STEMS.items():
        dotted = stem.replace("-idx", ".idx")
        candidates = [directory / (s + ext) for s in (stem, dotted) for ext in (".gz", "")]
        found[role] = next((p for p in candidates if p.is_file()), None)
    return found


def load_mnist_dir(directory: Path) -> tuple[Dataset, Dataset]:
    """MNIST's official train and test parts from a directory of the four IDX files."""
    files = find_mnist_files(directory)
    missing = [MNIST_STEMS[role] for role, p in files.items() if p is None]
    if missing:
        raise DataError(
            f"{directory}: missing {', '.join(s + '[.gz]' for s in missing)}; put the four MNIST IDX files there"
        )
    parts = []
    for part in ("train", "test"):
        images_path, labels_path = files[f"{part}_images"], files[f"{part}_labels"]
        assert images_path is not None and labels_path is not None  # the missing ones were refused above
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images):,} images but {labels_path} holds "
                f"{len(labels):,} labels; the files do not belong together"
            )
        parts.append(_digit_dataset(images, labels, str(directory), part, labels_path))
    return parts[0], parts[1]


def load_npz(path: Path) -> tuple[Dataset, Dataset]:
    """Train and test parts from a Keras-style ``mnist.npz`` (x_train, y_train, x_test, y_test).

    Images are ``(N, H, W)`` uint8 (scaled /255) or float already in [0, 1].
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing arrays {', '.join(missing)} (found {sorted(arrays)}); "
            "expected Keras' mnist.npz layout x_train, y_train, x_test, y_test"
        )
    parts = []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]  # N, H, W, 1 (channels last) -> N, H, W
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{path}: x_{part} {x.shape} and y_{part} {y.shape} ({y.dtype}) "
                "are not N images (N, H, W) and N integer labels"
            )
        parts.append(_digit_dataset(x, y, str(path), part, path))
    return parts[0], parts[1]


def _digit_dataset(x: np.ndarray, y: np.ndarray, name: str, part: str, source: Path) -> Dataset:
    if x.dtype == np.uint8:
        images = x.astype(np.float32)
        images /= 255
    elif np.issubdtype(x.dtype, np.floating) and x.size and 0 <= x.min() and x.max() <= 1:
        images = x.astype(np.float32)
    else:
        raise DataError(f"{source}: images of dtype {x.dtype} must be uint8 or floats in [0, 1]")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{source}: labels range {y.min()}..{y.max()}, digits need 0..9")
    return Dataset(images[:, None], y.astype(np.int64), DIGIT_NAMES, name, part)  # N, 1, H, W
