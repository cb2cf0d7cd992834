"""A photo or scan of one digit, prepared the way MNIST's digits were made.

LeCun, Cortes & Burges describe MNIST's preparation: the digit was size-normalised to fit in a
20x20 box keeping its aspect ratio (anti-aliased, hence grey levels), then centred in a 28x28
field by its centre of mass. `mnist_style` does that after making the digit white on black
(inverting a light background) and cropping to the ink.
"""

from __future__ import annotations

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


def mnist_style(gray: np.ndarray, where: str = "image") -> np.ndarray:
    """A 28x28 float32 white-on-black digit from a gray image in [0, 1].

    The background level is the median of the border pixels; a light background is inverted.
    Contrast is stretched from the background to the darkest ink, the image cropped to the ink,
    fitted in 20x20 keeping the aspect ratio, and pasted so its centre of mass is the centre.

    Examples
    --------
    >>> img = np.ones((50, 40), np.float32); img[10:40, 18:22] = 0   # a dark '1' on white
    >>> out = mnist_style(img)
    >>> out.shape, bool(out.max() > 0.9), bool(out[:, :4].max() == 0)
    ((28, 28), True, True)
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
    return _centre_by_mass(_fit_box(ink, BOX))


def _fit_box(ink: np.ndarray, box: int) -> np.ndarray:
    from PIL import Image

    h, w = ink.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(im, np.float32), 0, 1)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    h, w = digit.shape
    total = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(h)) / total
    cx = (digit.sum(axis=0) @ np.arange(w)) / total
    # top-left corner that puts the centre of mass on the field's centre, kept inside the field
    top = int(np.clip(round((FIELD - 1) / 2 - cy), 0, FIELD - h))
    left = int(np.clip(round((FIELD - 1) / 2 - cx), 0, FIELD - w))
    out = np.zeros((FIELD, FIELD), np.float32)
    out[top : top + h, left : left + w] = digit
    return out


def load_digit_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image file as a (1, h, w) digit for a network whose input is ``input_shape`` (H, W, C).

    A network that takes MNIST's 28x28 field (also padded, see
    `convcli.training.loop.input_padding`) gets the field; other sizes (the 8x8 digits) get the
    20x20 box resized to fill the input.
    """
    from PIL import Image

    digit = mnist_style(read_gray(Path(path)), str(path))
    if input_padding((1, FIELD, FIELD), input_shape) is not None:
        return digit[None]
    # the UCI 8x8 digits fill their field: resize the 20x20 box, not the 28x28 field
    box = digit[(FIELD - BOX) // 2 : (FIELD + BOX) // 2, (FIELD - BOX) // 2 : (FIELD + BOX) // 2]
    h, w = input_shape[:2]
    im = Image.fromarray(np.ascontiguousarray(box)).resize((w, h), Image.Resampling.BOX)
    return np.clip(np.asarray(im, np.float32), 0, 1)[None]
