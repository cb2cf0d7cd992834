"""Named image kernels as data: one registry that the CLI choices, the docs and the tests read.

Every kernel is applied by cross-correlation (`convcli.ops.filters.filter2d`, no flip), so the matrix
reads as the weights laid over the image. Separable kernels are built from their 1-D factors:
``matrix = outer(col, row)``, ``col`` running down the rows and ``row`` across the columns.

Sign convention: an x kernel responds **positive to bright-to-dark from left to right**, a y
kernel to bright-to-dark from top to bottom. That is the convention of the deeplearning.ai CNN
course, whose vertical edge filter is ``[[1, 0, -1]] * 3``. OpenCV's ``Sobel(dx=1)`` and
scipy.ndimage's ``sobel(axis=1)`` use the opposite sign (``[-1, 0, 1]`` across); their magnitudes
agree with ours. Magnitudes are unnormalised (scikit-image divides Sobel by 4, Scharr by 16 and
Prewitt by 3).

The registry is plain Python numbers so that importing it costs no numpy (command-line startup);
`Kernel.array` gives the numpy matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from convcli.errors import InputError, did_you_mean

if TYPE_CHECKING:
    import numpy as np

Matrix = tuple[tuple[float, ...], ...]


def outer(col: tuple[float, ...], row: tuple[float, ...]) -> Matrix:
    """``np.outer`` on tuples, so the registry needs no numpy.

    >>> outer((1, 2, 1), (1, 0, -1))
    ((1, 0, -1), (2, 0, -2), (1, 0, -1))
    """
    return tuple(tuple(c * r for r in row) for c in col)


def transpose(matrix: Matrix) -> Matrix:
    """Rows become columns.

    >>> transpose(((1, 2), (3, 4)))
    ((1, 3), (2, 4))
    """
    return tuple(zip(*matrix, strict=True))


# 1-D factors. Binomial rows of Pascal's triangle, normalised, are the discrete Gaussians.
SMOOTH_SOBEL = (1, 2, 1)
SMOOTH_SCHARR = (3, 10, 3)
SMOOTH_PREWITT = (1, 1, 1)
DIFFERENCE = (1, 0, -1)
BINOMIAL_3 = (1 / 4, 2 / 4, 1 / 4)
BINOMIAL_5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
MEAN_3 = (1 / 3,) * 3

VERTICAL = outer(SMOOTH_PREWITT, DIFFERENCE)
SOBEL_X = outer(SMOOTH_SOBEL, DIFFERENCE)
SCHARR_X = outer(SMOOTH_SCHARR, DIFFERENCE)
PREWITT_X = outer(SMOOTH_PREWITT, DIFFERENCE)
ROBERTS_X = ((1, 0), (0, -1))
ROBERTS_Y = ((0, 1), (-1, 0))
LAPLACIAN = ((0, 1, 0), (1, -4, 1), (0, 1, 0))
LAPLACIAN_8 = ((1, 1, 1), (1, -8, 1), (1, 1, 1))
BOX = outer(MEAN_3, MEAN_3)
GAUSSIAN = outer(BINOMIAL_3, BINOMIAL_3)
GAUSSIAN_5 = outer(BINOMIAL_5, BINOMIAL_5)
SHARPEN = ((0, -1, 0), (-1, 5, -1), (0, -1, 0))


@dataclass(frozen=True)
class Kernel:
    """One named kernel.

    ``kind`` is ``edge`` (first derivative, sums to 0), ``laplacian`` (second derivative, sums
    to 0), ``smooth`` (sums to 1) or ``sharpen`` (sums to 1). ``partner`` names the other half of
    an x/y pair; ``factors`` is ``(col, row)`` for a separable kernel, else None.
    """

    name: str
    matrix: Matrix
    description: str
    sign: str
    kind: str
    source: str
    partner: str | None = None
    factors: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(fH, fW)."""
        return len(self.matrix), len(self.matrix[0])

    def array(self, dtype: str = "float64") -> np.ndarray:
        """The matrix as a numpy array of ``dtype`` (numpy is imported only here)."""
        import numpy as np

        return np.array(self.matrix, dtype=dtype)


def _pair(stem: str, x_matrix: Matrix, smooth: tuple[float, ...], description: str, source: str) -> list[Kernel]:
    """An x kernel built as ``outer(smooth, DIFFERENCE)`` and its transpose, the y kernel."""
    return [
        Kernel(
            f"{stem}-x",
            x_matrix,
            f"{description}, x derivative (finds vertical edges)",
            "positive where brightness falls from left to right",
            "edge",
            source,
            f"{stem}-y",
            (smooth, DIFFERENCE),
        ),
        Kernel(
            f"{stem}-y",
            transpose(x_matrix),
            f"{description}, y derivative (finds horizontal edges)",
            "positive where brightness falls from top to bottom",
            "edge",
            source,
            f"{stem}-x",
            (DIFFERENCE, smooth),
        ),
    ]


_COURSE = "Andrew Ng, deeplearning.ai Convolutional Neural Networks, week 1 (edge detection)"
_ALL = [
    Kernel(
        "vertical",
        VERTICAL,
        "course vertical-edge filter",
        "positive where brightness falls from left to right",
        "edge",
        _COURSE,
        "horizontal",
        (SMOOTH_PREWITT, DIFFERENCE),
    ),
    Kernel(
        "horizontal",
        transpose(VERTICAL),
        "course horizontal-edge filter",
        "positive where brightness falls from top to bottom",
        "edge",
        _COURSE,
        "vertical",
        (DIFFERENCE, SMOOTH_PREWITT),
    ),
    *_pair(
        "sobel",
        SOBEL_X,
        SMOOTH_SOBEL,
        "Sobel 3x3 gradient",
        "Sobel & Feldman, 'A 3x3 isotropic gradient operator for image processing', 1968",
    ),
    *_pair(
        "scharr",
        SCHARR_X,
        SMOOTH_SCHARR,
        "Scharr 3x3 gradient, more rotation-invariant than Sobel",
        "H. Scharr, 'Optimale Operatoren in der digitalen Bildverarbeitung', PhD thesis, 2000",
    ),
    *_pair(
        "prewitt",
        PREWITT_X,
        SMOOTH_PREWITT,
        "Prewitt 3x3 gradient",
        "J. Prewitt, 'Object enhancement and extraction', Picture Processing and Psychopictorics, 1970",
    ),
    Kernel(
        "roberts-x",
        ROBERTS_X,
        "Roberts cross, diagonal difference (top-left minus bottom-right)",
        "positive where brightness falls from top-left to bottom-right",
        "edge",
        "L. Roberts, 'Machine perception of three-dimensional solids', MIT, 1963",
        "roberts-y",
    ),
    Kernel(
        "roberts-y",
        ROBERTS_Y,
        "Roberts cross, anti-diagonal difference (top-right minus bottom-left)",
        "positive where brightness falls from top-right to bottom-left",
        "edge",
        "L. Roberts, 'Machine perception of three-dimensional solids', MIT, 1963",
        "roberts-x",
    ),
    Kernel(
        "laplacian",
        LAPLACIAN,
        "4-neighbour Laplacian (5-point stencil)",
        "negative on a bright dot, positive on a dark one (as scipy.ndimage.laplace, OpenCV ksize=1)",
        "laplacian",
        "the standard 5-point finite-difference stencil",
    ),
    Kernel(
        "laplacian-8",
        LAPLACIAN_8,
        "8-neighbour Laplacian, diagonals included",
        "negative on a bright dot, positive on a dark one",
        "laplacian",
        "Gonzalez & Woods, Digital Image Processing, 3rd ed., section 3.6.2",
    ),
    Kernel(
        "box", BOX, "3x3 mean (box blur)", "all weights 1/9", "smooth", "the moving average", factors=(MEAN_3, MEAN_3)
    ),
    Kernel(
        "gaussian",
        GAUSSIAN,
        "3x3 binomial Gaussian, [1, 2, 1]/4 on each axis",
        "all weights positive, summing to 1",
        "smooth",
        "binomial approximation of the Gaussian (Pascal's triangle)",
        factors=(BINOMIAL_3, BINOMIAL_3),
    ),
    Kernel(
        "gaussian-5",
        GAUSSIAN_5,
        "5x5 binomial Gaussian, [1, 4, 6, 4, 1]/16 on each axis",
        "all weights positive, summing to 1",
        "smooth",
        "binomial approximation of the Gaussian (Pascal's triangle)",
        factors=(BINOMIAL_5, BINOMIAL_5),
    ),
    Kernel(
        "sharpen",
        SHARPEN,
        "identity minus the 4-neighbour Laplacian",
        "sums to 1: flat areas keep their value, edges are overshot",
        "sharpen",
        "unsharp masking with the 5-point Laplacian",
    ),
]

KERNELS: dict[str, Kernel] = {k.name: k for k in _ALL}
"""Every named kernel, by name, in the order the CLI lists them."""


def get_kernel(name: str) -> Kernel:
    """The kernel called ``name``, or an InputError suggesting the closest names.

    >>> get_kernel("sobel-x").matrix
    ((1, 0, -1), (2, 0, -2), (1, 0, -1))
    >>> get_kernel("sobelx")
    Traceback (most recent call last):
    ...
    convcli.errors.InputError: kernel 'sobelx' is not known (did you mean 'sobel-x' or 'sobel-y'?)
    """
    if name in KERNELS:
        return KERNELS[name]
    hint = did_you_mean(str(name).lower(), KERNELS, n=3) or f"; known: {', '.join(KERNELS)}"
    raise InputError(f"kernel {name!r} is not known{hint}")
