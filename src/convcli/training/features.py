"""What a trained network sees in one image, computed with convcli's own forward and backward.

- The first convolution's filters, each with the nearest named kernel of the registry
  (`convcli.images.kernels.KERNELS`): the cosine distance ``1 - |cos|`` between the weights and a
  kernel of the same size, so that a scaled or sign-flipped copy of a kernel is at distance 0.
- Every convolution's map for the image: its output through the batch norm and activation after
  it (the map the next layer reads, as ``convcli draw`` folds them), with its mean and, after a
  ReLU, the fraction of units (and whole channels) at zero.
- Grad-CAM (Selvaraju et al., ICCV 2017) on the map of the last convolution ``A`` (K, h, w):
  ``alpha_k = mean over positions of d y_c / d A_k``, where ``y_c`` is the class's score before
  the softmax, and ``cam = ReLU(sum_k alpha_k A_k)``. The map is placed on the input by the
  receptive fields of `convcli.networks.report` (unit ``i``'s field is centred at ``start + i j``),
  not stretched, so a map that a valid convolution shrank lands where its units look, and the
  border no unit is centred on stays cold.
- Saliency (Simonyan et al., 2014): ``max over channels of |d y_c / d x|``.

The image is prepared as ``predict`` prepares it (`convcli.training.inference.prepare_digit`), and
the `Placement` it returns carries the heat map back onto the photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convcli.errors import InputError
from convcli.images.kernels import KERNELS
from convcli.networks import spec as S
from convcli.networks.report import LayerInfo, walk
from convcli.nn import layers as L
from convcli.nn.loss import softmax
from convcli.nn.model import Model, Trace
from convcli.ops.resample import resample
from convcli.training.inference import Placement

ELEMENTWISE = (S.BatchNorm, S.Activation, S.Dropout)
CONVOLUTIONS = (S.Conv, S.DWConv)
DEAD_AFTER = ("relu", "relu6")
"""Activations whose output is exactly zero for every input at or below zero."""
NO_CONVOLUTION = "the network has no convolution, so there are no filters or maps to show"


@dataclass(frozen=True)
class Nearest:
    """The registry kernel closest to a filter: ``sign`` -1 when the filter is its negative;
    ``shape`` the kernel's own, smaller than the filter's when it was compared centred in zeros;
    ``matrix`` what the filter was compared with (the sign applied, the zeros added)."""

    name: str
    sign: int
    distance: float
    shape: tuple[int, int]
    matrix: np.ndarray


@dataclass(frozen=True)
class Filter:
    """One 2-D slice of the first convolution: output channel ``index`` and input channel
    ``channel`` (both from 1), its weights (fH, fW) and the nearest named kernel, if one has its size."""

    index: int
    channel: int
    weights: np.ndarray
    nearest: Nearest | None


@dataclass(frozen=True)
class ConvMap:
    """One convolution's map for the image: ``number`` among the convolutions (from 1, in the
    order of `convcli.nn.model.Model.walk`), ``path`` its weights' name in the checkpoint
    (``"4.body.0"``), its spec word, the words of the blocks around it and of the elementwise
    layers folded in after it, and ``values`` (C, h, w)."""

    number: int
    path: str
    word: str
    within: tuple[str, ...]
    folded: tuple[str, ...]
    values: np.ndarray
    dead_after: bool

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C), as the reports print shapes."""
        c, h, w = self.values.shape
        return h, w, c

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def dead(self) -> float | None:
        """The fraction of units a ReLU left at zero; None when no ReLU follows the convolution."""
        return float(np.mean(self.values <= 0)) if self.dead_after else None

    @property
    def dead_channels(self) -> int | None:
        """How many channels are zero everywhere in this image; None without a ReLU."""
        return int(np.sum(self.values.reshape(len(self.values), -1).max(axis=1) <= 0)) if self.dead_after else None


@dataclass(frozen=True)
class Explanation:
    """Grad-CAM and saliency for class ``target``: ``cam`` at the map's resolution, ``heat`` and
    ``saliency`` at the input's (H, W), and the map they came from (its path and words)."""

    target: int
    cam: np.ndarray
    heat: np.ndarray
    saliency: np.ndarray
    layer: str
    words: tuple[str, ...]

    @property
    def peak(self) -> tuple[int, int] | None:
        """The input pixel (row, column) where the heat is highest; None when it is zero everywhere."""
        if not self.heat.max() > 0:
            return None
        i, j = np.unravel_index(int(np.argmax(self.heat)), self.heat.shape)
        return int(i), int(j)


def nearest_kernel(weights: np.ndarray) -> Nearest | None:
    """The registry kernel whose direction is closest to ``weights`` (fH, fW): the smallest
    ``1 - |cos(weights, kernel)|``. A kernel of the filter's size is compared as it is, a smaller
    one centred in zeros (a 3x3 Sobel inside a 5x5 filter is still a Sobel); the first in the
    registry's order wins a tie (the course's ``vertical`` before ``prewitt-x``, the same matrix),
    and a kernel of the filter's own size one with a padded kernel. None when no kernel fits or the
    weights are all zero.

    >>> n = nearest_kernel(-0.5 * KERNELS["sobel-y"].array())
    >>> n.name, n.sign, n.distance
    ('sobel-y', -1, 0.0)
    >>> nearest_kernel(np.pad(KERNELS["laplacian"].array(), 1)).shape
    (3, 3)
    """
    v = np.asarray(weights, np.float64).ravel()
    norm = np.linalg.norm(v)
    if norm == 0:
        return None
    fits = [k for k in KERNELS.values() if k.shape == weights.shape]
    fits += [k for k in KERNELS.values() if _centred(k.shape, weights.shape) and k.shape != weights.shape]
    best = None
    for kernel in fits:
        (dh, dw), (kh, kw) = (weights.shape[0] - kernel.shape[0], weights.shape[1] - kernel.shape[1]), kernel.shape
        u = np.pad(kernel.array(), ((dh // 2, dh // 2), (dw // 2, dw // 2))).ravel()
        cos = float(v @ u / (norm * np.linalg.norm(u)))
        distance = max(0.0, 1 - abs(cos))
        if best is None or distance < best.distance:
            sign = 1 if cos >= 0 else -1
            best = Nearest(kernel.name, sign, distance, (kh, kw), sign * u.reshape(weights.shape))
    return best


def _centred(kernel: tuple[int, int], filter_shape: tuple[int, int]) -> bool:
    """Whether ``kernel`` fits in ``filter_shape`` with as many zeros on each side."""
    return all(k <= f and (f - k) % 2 == 0 for k, f in zip(kernel, filter_shape))


def convolutions(model: Model) -> list[tuple[str, LayerInfo, L.Layer, list[tuple[str, LayerInfo, L.Layer]]]]:
    """Every convolution of ``model`` with the elementwise layers right after it in its sequence,
    in the order of `Model.walk`."""
    rows = list(model.walk())
    found = []
    for i, (path, info, layer) in enumerate(rows):
        if isinstance(info.layer, CONVOLUTIONS):
            found.append((path, info, layer, _folded(rows, i)))
    return found


def _folded(rows, i: int) -> list:
    parent = rows[i][0].rpartition(".")[0]
    after = []
    for path, info, layer in rows[i + 1 :]:
        if path.rpartition(".")[0] != parent or not isinstance(info.layer, ELEMENTWISE):
            break
        after.append((path, info, layer))
    return after


def first_filters(model: Model) -> tuple[str, tuple[Filter, ...]]:
    """The first convolution's spec word and its filters, one per (output, input) channel pair."""
    found = convolutions(model)
    if not found:
        raise InputError(NO_CONVOLUTION)
    _, info, layer, _ = found[0]
    w = layer.params["w"]  # C_out, C_in / groups, fH, fW
    filters = tuple(
        Filter(k + 1, c + 1, w[k, c], nearest_kernel(w[k, c])) for k in range(w.shape[0]) for c in range(w.shape[1])
    )
    return info.word, filters


def conv_maps(model: Model, trace: Trace) -> tuple[ConvMap, ...]:
    """Each convolution's map (through the elementwise layers after it) from a traced forward of
    one image."""
    words = {path: info.word for path, info, _ in model.walk()}
    maps = []
    for number, (path, info, layer, after) in enumerate(convolutions(model), 1):
        last = after[-1][2] if after else layer
        acts = [i.layer.name for _, i, _ in after if isinstance(i.layer, S.Activation)]
        parts = path.split(".")
        within = tuple(words[".".join(parts[: k + 1])] for k in range(0, len(parts) - 1, 2))
        maps.append(
            ConvMap(
                number,
                path,
                info.word,
                within,
                tuple(i.word for _, i, _ in after),
                trace.outputs[last][0],
                bool(acts) and acts[-1] in DEAD_AFTER,
            )
        )
    return tuple(maps)


def cam_layer(model: Model) -> tuple[str, LayerInfo, L.Layer, tuple[str, ...]]:
    """Where Grad-CAM looks: the last layer of the network (not inside a block) that is a
    convolution or a block holding one, through the elementwise layers after it; its path, report
    entry, layer and the words it is made of."""
    rows = [row for row in model.walk() if "." not in row[0]]
    last = None
    for i, (_, info, _) in enumerate(rows):
        holds = any(isinstance(inner.layer, CONVOLUTIONS) for inner in walk((info,)))
        if holds and len(info.out_shape) == 3:
            last = i
    if last is None:
        raise InputError(NO_CONVOLUTION)
    chain = [rows[last], *_folded(rows, last)]
    path, info, layer = chain[-1]
    return path, info, layer, tuple(i.word for _, i, _ in chain)


def explain(model: Model, x: np.ndarray, target: int | None = None):
    """Probabilities of one prepared input ``x`` (1, C, H, W), every convolution's map, and the
    `Explanation` of class ``target`` (default: the predicted one).

    Returns ``(probabilities, maps, explanation)``.
    """
    path, info, layer, words = cam_layer(model)
    with model.traced() as trace:
        logits = model.forward(x, keep=True)  # in evaluation mode, and a backward follows
        probabilities = softmax(logits)[0]
        k = int(np.argmax(probabilities)) if target is None else target
        d = np.zeros_like(logits)
        d[0, k] = 1  # the class's score before the softmax
        dx = model.backward(d, input_grad=True)
    assert dx is not None  # asked for with input_grad
    a, g = trace.outputs[layer][0].astype(np.float64), trace.grads[layer][0].astype(np.float64)  # K, h, w
    alpha = g.mean(axis=(1, 2))
    cam = np.maximum(np.tensordot(alpha, a, axes=1), 0)  # h, w
    heat = on_input(cam, info, x.shape[2:])
    saliency = np.abs(dx[0]).max(axis=0).astype(np.float64)
    return probabilities, conv_maps(model, trace), Explanation(k, cam, heat, saliency, path, words)


def on_input(cam: np.ndarray, info: LayerInfo, input_hw: tuple[int, int]) -> np.ndarray:
    """A map of ``info``'s output placed on the input: input pixel ``p`` (centre ``p + 0.5``) reads
    the map at ``(p + 0.5 - start) / j`` in unit centres (``start``, ``j``: the layer's receptive
    field), interpolated bilinearly; zero more than half a jump beyond the outermost units, where
    no unit is centred (the border a valid convolution shrinks away)."""
    if info.field is None:
        raise InputError(f"{info.word}: its output has no receptive field to place a heat map by")
    start, j = info.field.start, info.field.j
    return resample(cam, input_hw, (1 / j, 1 / j), (0.5 - start / j, 0.5 - start / j))


def on_photo(
    heat: np.ndarray, placement: Placement, shape: tuple[int, int], photo_shape: tuple[int, int]
) -> np.ndarray:
    """``heat`` (the input's H, W) drawn on the photo at ``shape`` pixels (the photo's
    ``photo_shape`` scaled): zero where the photo lies outside the network's input."""
    (sy, sx), (oy, ox) = placement.scale, placement.offset
    step_y, step_x = photo_shape[0] / shape[0], photo_shape[1] / shape[1]  # photo pixels per output pixel
    return resample(heat, shape, (step_y / sy, step_x / sx), (-oy / sy, -ox / sx))


def class_index(name: str | None, class_names: tuple[str, ...]) -> int | None:
    """The index of ``--class NAME``; None for the predicted class."""
    if name is None:
        return None
    if name not in class_names:
        raise InputError(f"--class {name!r} is not one of the model's classes: {', '.join(class_names)}")
    return class_names.index(name)


@dataclass(frozen=True)
class FeaturesRequest:
    """``convcli features MODEL IMAGE -o OUTPUT``: ``output`` is a folder (the files are named after
    the image) or a prefix; ``layer`` draws one convolution's maps (from 1) instead of all;
    ``target`` explains that class instead of the predicted one."""

    model: Path
    image: Path
    output: Path
    folder: bool = False
    """The output was given as a folder (``out/``): created if it does not exist yet."""
    layer: int | None = None
    target: str | None = None


@dataclass(frozen=True)
class FeaturesResult:
    """Everything ``features`` computed and the files it wrote (by kind, in writing order)."""

    request: FeaturesRequest
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    first_conv: str
    filters: tuple[Filter, ...]
    maps: tuple[ConvMap, ...]
    explanation: Explanation
    input_image: np.ndarray
    photo: np.ndarray
    placement: Placement
    files: dict[str, list[Path]]

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def peak_photo(self) -> tuple[int, int] | None:
        """The heat map's peak in the photo, ``(x, y)`` in pixels: the centre of the peak's input
        pixel carried back through the crop and resize; None when the heat is zero everywhere or
        peaks where the input holds no part of the photo (its padding)."""
        if self.explanation.peak is None:
            return None
        i, j = self.explanation.peak
        y, x = self.placement.to_photo(i + 0.5, j + 0.5)
        h, w = self.photo.shape
        return (int(x), int(y)) if 0 <= x < w and 0 <= y < h else None

    def heat_on_photo(self, shape: tuple[int, int]) -> np.ndarray:
        """The Grad-CAM heat map on the photo drawn at ``shape`` pixels (see `on_photo`)."""
        return on_photo(self.explanation.heat, self.placement, shape, self.photo.shape)


def output_names(request: FeaturesRequest, n_maps: int) -> dict[str, list[Path]]:
    """The files ``features`` writes: in the folder ``output`` named after the image, else with
    ``output`` as their prefix; a map per convolution, or only ``--layer``'s."""
    folder = request.folder or request.output.is_dir()
    base = request.output / request.image.stem if folder else request.output
    digits = len(str(n_maps))

    def name(suffix: str) -> Path:
        return base.with_name(f"{base.name}-{suffix}")

    return {
        "filters": [name("filters.png")],
        "maps": [name(f"conv{n:0{digits}d}.png") for n in _numbers(request, n_maps)],
        "gradcam": [name("gradcam.png")],
        "heat_map": [name("gradcam.npy")],
        "saliency": [name("saliency.npy")],
    }


def features(request: FeaturesRequest) -> FeaturesResult:
    """Filters, maps, Grad-CAM and saliency of ``request.image`` under ``request.model``, written as
    PNG pictures and ``.npy`` heat maps; every output is checked before any work is done."""
    from convcli.draw import features as draw
    from convcli.outputs import atomic_write, check_output_path
    from convcli.training.inference import prepare_digit
    from convcli.training.loop import check_input, prepare_images
    from convcli.training.trained import load_model

    model, saved = load_model(request.model, fuse=False)
    n_maps = len(convolutions(model))
    if n_maps == 0:
        raise InputError(NO_CONVOLUTION)
    if request.layer is not None and not 1 <= request.layer <= n_maps:
        raise InputError(f"--layer {request.layer}: the network has {n_maps} convolutions, give 1 to {n_maps}")
    info = saved.meta.data
    target = class_index(request.target, info.class_names)
    files = output_names(request, n_maps)
    inputs = [request.model, request.image]
    new_folder = request.folder and not request.output.exists()
    if new_folder:  # files in a folder made for them clash with nothing; the folder must be makeable
        check_output_path(request.output, inputs)
    checked: list[Path] = []
    for path in () if new_folder else (p for paths in files.values() for p in paths):
        check_output_path(path, inputs, others=checked)
        checked.append(path)

    prepared = prepare_digit(request.image, saved.network.input)
    pad = check_input(prepared.digit.shape, saved.network.input)
    x = prepare_images(prepared.digit[None], saved.network.input, info.mean, info.std)
    probabilities, maps, explanation = explain(model, x, target)
    word, filters = first_filters(model)
    if new_folder:
        request.output.mkdir()
    result = FeaturesResult(
        request,
        info.class_names,
        probabilities,
        word,
        filters,
        maps,
        explanation,
        prepare_images(prepared.digit[None], saved.network.input, 0.0, 1.0)[0, 0],  # padded, not normalised
        prepared.photo,
        prepared.placement.then((1.0, 1.0), (-pad, -pad)),
        files,
    )
    draw.write_picture(files["filters"][0], draw.filter_grid(word, filters), inputs)
    for path, m in zip(files["maps"], [maps[n - 1] for n in _numbers(request, n_maps)]):
        draw.write_picture(path, draw.map_grid(m, n_maps), inputs)
    draw.write_picture(files["gradcam"][0], draw.gradcam_picture(result), inputs)
    for key, array in (("heat_map", explanation.heat), ("saliency", explanation.saliency)):
        atomic_write(files[key][0], _npy_writer(array.astype(np.float32)), inputs)
    return result


def _numbers(request: FeaturesRequest, n_maps: int) -> list[int]:
    return [request.layer] if request.layer is not None else list(range(1, n_maps + 1))


def _npy_writer(array: np.ndarray) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        np.save(f, array)

    return write
