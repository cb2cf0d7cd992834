"""A photo or scan of one digit, prepared the way MNIST's digits were made.

LeCun, Cortes & Burges describe MNIST's preparation: the digit was size-normalised to fit in a
20x20 box keeping its aspect ratio (anti-aliased, hence grey levels), then centred in a 28x28
field by its centre of mass. `mnist_style` does that after making the digit white on black
(inverting a light background) and cropping to the ink. `prepare_digit` also says where the
prepared pixels came from in the photo (a `Placement`), so that a map computed on the network's
input can be drawn back on the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convcli.errors import InputError
from convcli.training.loop import MNIST_FIELD, input_padding

FIELD = MNIST_FIELD
BOX = 20
INK = 0.2  # fraction of the contrast range above which a pixel counts as ink when cropping


def read_gray(path: Path) -> np.ndarray:
    """An image file as ``(H, W)`` float32 grey levels, read by `convcli.images.read.read_image`.

    The one reader: an image folder trained on (`convcli.training.datasets.load_image_folder`)
    gives the network exactly these pixels (Rec.601 grey, EXIF orientation applied, transparency
    composited onto white, 8-bit /255 and 16-bit /65535, the decompression-bomb limit).
    """
    from convcli.images.read import read_image

    return read_image(path, channels="gray").array[0]


@dataclass(frozen=True)
class Placement:
    """Where a prepared image's pixels lie in the photo it came from: a point at ``(y, x)`` in the
    prepared image (pixel edges at integers, so pixel ``i`` spans ``[i, i + 1)``) is at
    ``offset + scale * (y, x)`` in the photo, axis by axis. Cropping and resizing keep the axes,
    so the map is one scale and one offset per axis.

    >>> Placement((2.0, 0.5), (10.0, 3.0)).to_photo(1.0, 4.0)
    (12.0, 5.0)
    """

    scale: tuple[float, float]
    offset: tuple[float, float]

    def to_photo(self, y: float, x: float) -> tuple[float, float]:
        return self.offset[0] + self.scale[0] * y, self.offset[1] + self.scale[1] * x

    def then(self, scale: tuple[float, float], offset: tuple[float, float]) -> Placement:
        """The placement of an image made from this one, whose point ``p`` is ``offset + scale * p``
        here (a crop, a resize, a padding)."""
        return Placement(
            (self.scale[0] * scale[0], self.scale[1] * scale[1]),
            self.to_photo(*offset),
        )


def mnist_style(gray: np.ndarray, where: str = "image") -> np.ndarray:
    """A 28x28 float32 white-on-black digit from a gray image in [0, 1]; see `mnist_field`."""
    return mnist_field(gray, where)[0]


def mnist_field(gray: np.ndarray, where: str = "image") -> tuple[np.ndarray, Placement]:
    """A 28x28 float32 white-on-black digit from a gray image in [0, 1], and where it came from.

    The background level is the median of the border pixels; a light background is inverted.
    Contrast is stretched from the background to the darkest ink, the image cropped to the ink,
    fitted in 20x20 keeping the aspect ratio, and pasted so its centre of mass is the centre.

    Examples
    --------
    >>> img = np.ones((50, 40), np.float32); img[10:40, 18:22] = 0   # a dark '1' on white
    >>> out, placement = mnist_field(img)
    >>> out.shape, bool(out.max() > 0.9), bool(out[:, :4].max() == 0)
    ((28, 28), True, True)
    >>> placement.scale[0]   # the 30 rows of ink became 20
    1.5
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = 1 - gray if background > 0.5 else gray
    low, high = float(np.median(1 - border if background > 0.5 else border)), float(ink.max())
    if high - low < 1e-3:
        raise InputError(f"{where}: no digit found (the image is one flat gray level)")
    ink = np.clip((ink - low) / (high - low), 0, 1)
    rows, cols = np.flatnonzero((ink > INK).any(axis=1)), np.flatnonzero((ink > INK).any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = _fit_box(ink, BOX)
    field, (top, left) = _centre_by_mass(digit)
    scale = (ink.shape[0] / digit.shape[0], ink.shape[1] / digit.shape[1])
    return field, Placement(scale, (rows[0] - top * scale[0], cols[0] - left * scale[1]))


def _fit_box(ink: np.ndarray, box: int) -> np.ndarray:
    from PIL import Image

    h, w = ink.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(im, np.float32), 0, 1)


def _centre_by_mass(digit: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = digit.shape
    total = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(h)) / total
    cx = (digit.sum(axis=0) @ np.arange(w)) / total
    # top-left corner that puts the centre of mass on the field's centre, kept inside the field
    top = int(np.clip(round((FIELD - 1) / 2 - cy), 0, FIELD - h))
    left = int(np.clip(round((FIELD - 1) / 2 - cx), 0, FIELD - w))
    out = np.zeros((FIELD, FIELD), np.float32)
    out[top : top + h, left : left + w] = digit
    return out, (top, left)


@dataclass(frozen=True)
class PreparedDigit:
    """A photo as `predict` feeds it: ``digit`` (1, h, w) in [0, 1], before the padding and
    normalisation of `convcli.training.loop.prepare_images`; the photo's gray levels as read; and
    the `Placement` of ``digit``'s pixels in them."""

    digit: np.ndarray
    photo: np.ndarray
    placement: Placement


def load_digit_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image file as a (1, h, w) digit for a network whose input is ``input_shape`` (H, W, C);
    see `prepare_digit`."""
    return prepare_digit(path, input_shape).digit


def prepare_digit(path: Path, input_shape: tuple[int, ...]) -> PreparedDigit:
    """One image file as a digit for a network whose input is ``input_shape`` (H, W, C), and where
    its pixels came from.

    A network that takes MNIST's 28x28 field (also padded, see
    `convcli.training.loop.input_padding`) gets the field; other sizes (the 8x8 digits) get the
    20x20 box resized to fill the input.
    """
    from PIL import Image

    photo = read_gray(Path(path))
    digit, placement = mnist_field(photo, str(path))
    if input_padding((1, FIELD, FIELD), input_shape) is not None:
        return PreparedDigit(digit[None], photo, placement)
    # the UCI 8x8 digits fill their field: resize the 20x20 box, not the 28x28 field
    start = (FIELD - BOX) // 2
    box = digit[start : start + BOX, start : start + BOX]
    h, w = input_shape[:2]
    im = Image.fromarray(np.ascontiguousarray(box)).resize((w, h), Image.Resampling.BOX)
    resized = np.clip(np.asarray(im, np.float32), 0, 1)[None]
    return PreparedDigit(resized, photo, placement.then((BOX / h, BOX / w), (start, start)))
