"""The built-in data set: the 1,797 8x8 UCI handwritten digits shipped with convcli."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from convcli.training.loaders import DIGIT_NAMES, Dataset


def load_digits() -> Dataset:
    """The 1,797 8x8 UCI digits shipped with convcli, pixel values 0..16 scaled by 1/16.

    Examples
    --------
    >>> d = load_digits()
    >>> d.images.shape, d.images.dtype.name, d.labels[:5].tolist()
    ((1797, 1, 8, 8), 'float32', [0, 1, 2, 3, 4])
    """
    resource = resources.files("convcli").joinpath("resources/digits.csv.gz")
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)  # N, 64 pixels + label
    images = table[:, :64].astype(np.float32).reshape(-1, 1, 8, 8) / np.float32(16)
    return Dataset(images, table[:, 64].copy(), DIGIT_NAMES, "digits")
