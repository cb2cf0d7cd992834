"""What ``convcli features`` computes: nearest named kernels, each convolution's map, the layer
Grad-CAM looks at, Grad-CAM against PyTorch, and Grad-CAM carried back onto a photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from convcli.errors import InputError
from convcli.images.kernels import KERNELS
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.networks.zoo import get
from convcli.nn import checkpoint as ckpt
from convcli.nn.checkpoint import DataInfo, Metadata
from convcli.nn.model import build_model
from convcli.training.features import (
    FeaturesRequest,
    cam_layer,
    explain,
    features,
    first_filters,
    nearest_kernel,
    on_input,
)
from convcli.training.loop import TrainConfig


def model_of(words: str, seed: int = 0):
    model = build_model(analyse(parse_words(words.split())), seed=seed, fuse=False)
    model.eval()
    return model


def save(path, model, mean=0.1, std=0.3, classes=2):
    """``model`` as a checkpoint, as `convcli train` writes one."""
    c, (h, w) = model.report.input_shape[2], model.report.input_shape[:2]
    info = DataInfo("digits", tuple(map(str, range(classes))), (c, h, w), mean, std, 0, 0.1, 0.2, 0, {})
    meta = Metadata(model.report.network, TrainConfig(epochs=1), info, epoch=1)
    return ckpt.save(path, model.state_dict(), {}, meta)


# nearest named kernels


def test_a_filter_set_to_sobel_x_is_sobel_x_at_distance_0():
    model = model_of("8x8x1 conv:4,f=3,p=same relu flatten fc:10")
    w = model.root.layers[0].params["w"]
    w[0, 0] = KERNELS["sobel-x"].array()
    w[1, 0] = -3 * KERNELS["laplacian"].array()
    w[2, 0] = KERNELS["sobel-x"].array() + 0.1 * KERNELS["sobel-y"].array()
    word, filters = first_filters(model)
    assert word == "conv:4,f=3,p=same" and len(filters) == 4
    assert (filters[0].nearest.name, filters[0].nearest.sign, filters[0].nearest.distance) == ("sobel-x", 1, 0)
    assert (filters[1].nearest.name, filters[1].nearest.sign) == ("laplacian", -1)
    assert filters[1].nearest.distance == pytest.approx(0, abs=1e-12)
    # a Sobel with a little of its partner is still nearest the Sobel: 1 - 1/sqrt(1.01)
    assert filters[2].nearest.name == "sobel-x"
    assert filters[2].nearest.distance == pytest.approx(1 - 1 / np.sqrt(1.01))


def test_nearest_kernel_ties_sizes_and_nothing_to_compare():
    # the course's vertical filter and Prewitt's x are the same matrix: the registry's first wins
    assert nearest_kernel(KERNELS["prewitt-x"].array()).name == "vertical"
    padded = nearest_kernel(np.pad(KERNELS["scharr-y"].array(), 1))  # inside a 5x5 filter
    assert (padded.name, padded.shape, padded.distance) == ("scharr-y", (3, 3), 0)
    np.testing.assert_array_equal(padded.matrix, np.pad(KERNELS["scharr-y"].array(), 1))
    assert nearest_kernel(np.pad(KERNELS["gaussian-5"].array(), ((0, 0), (1, 1)))) is not None  # 5x7: 3x3 and 5x5 fit
    assert nearest_kernel(np.ones((1, 1))) is None and nearest_kernel(np.zeros((3, 3))) is None
    assert nearest_kernel(np.ones((2, 3))) is None  # 2x2 cannot be centred in 3 columns


# each convolution's map, and the layer Grad-CAM looks at


def test_maps_fold_the_elementwise_layers_after_each_convolution():
    model = model_of("8x8x1 conv:4,f=3,p=1 bn relu res:4 conv:3,f=1 flatten fc:2")
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    _, maps, _ = explain(model, x)
    assert [(m.path, m.folded, m.within) for m in maps] == [
        ("0", ("bn", "relu"), ()),
        ("3.body.0", ("bn", "relu"), ("res:4",)),
        ("3.body.3", ("bn",), ("res:4",)),  # the block adds the input, then its ReLU
        ("4", (), ()),
    ]
    relu_out = model.root.layers[2].forward(
        model.root.layers[1].forward(model.root.layers[0].forward(x, False), False), False
    )
    np.testing.assert_allclose(maps[0].values, relu_out[0], rtol=1e-6)
    assert maps[0].shape == (8, 8, 4) and maps[0].mean == pytest.approx(relu_out.mean(), rel=1e-6)
    assert maps[0].dead == pytest.approx(np.mean(relu_out == 0))
    assert maps[0].dead_channels == int(np.sum(relu_out[0].reshape(4, -1).max(axis=1) == 0))
    assert maps[2].dead is None and maps[3].dead_channels is None  # no ReLU after them


@pytest.mark.parametrize(
    "name, path, words",
    [
        ("mnist-cnn", "4", ("conv:64,f=3,p=same", "relu")),
        ("lenet5", "4", ("conv:16,f=5", "relu")),
        ("digits-cnn", "9", ("conv:64,f=3,p=same,bias=0", "bn", "relu")),
        ("mnist-resnet", "5", ("res:64,s=2",)),
        ("mnist-mobilenet", "5", ("dwsep:128,s=2",)),
        ("mnist-inception", "6", ("inception:16,16-32,8-16,16,bn=1",)),
    ],
)
def test_grad_cam_looks_at_the_last_convolution_or_block(name, path, words):
    got = cam_layer(build_model(analyse(get(name)), fuse=False))
    assert (got[0], got[3]) == (path, words)


def test_a_network_without_convolutions_is_refused():
    with pytest.raises(InputError, match="no convolution"):
        cam_layer(model_of("8x8x1 flatten fc:10"))
    with pytest.raises(InputError, match="no convolution"):
        first_filters(model_of("8x8x1 flatten fc:10"))


# Grad-CAM and saliency against PyTorch


def torch_net(model):
    """The PyTorch network of TORCH_NET with ``model``'s weights."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    conv1, bn, _, _, conv2, _, _, fc = model.root.layers
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 3),
    ).double()
    with torch.no_grad():
        for ours, theirs in ((conv1, net[0]), (conv2, net[4]), (fc, net[7])):
            theirs.weight.copy_(torch.from_numpy(ours.params["w"].astype(np.float64)))
            theirs.bias.copy_(torch.from_numpy(ours.params["b"].astype(np.float64)))
        net[1].weight.copy_(torch.from_numpy(bn.params["gamma"].astype(np.float64)))
        net[1].bias.copy_(torch.from_numpy(bn.params["beta"].astype(np.float64)))
        net[1].running_mean.copy_(torch.from_numpy(bn.buffers["mean"].astype(np.float64)))
        net[1].running_var.copy_(torch.from_numpy(bn.buffers["var"].astype(np.float64)))
    return torch, net.eval()


TORCH_NET = "12x12x1 conv:4,f=3,p=1 bn relu maxpool:2 conv:6,f=3 relu flatten fc:3"


@pytest.mark.parametrize("k", [0, 1, 2])
def test_grad_cam_and_saliency_match_pytorch(k):
    model = model_of(TORCH_NET, seed=11)
    rng = np.random.default_rng(7)  # with these, each class's map is positive in some places, zero in others
    bn = model.root.layers[1]
    bn.params["gamma"] = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    bn.params["beta"] = rng.normal(0, 0.5, 4).astype(np.float32)
    bn.buffers["mean"] = rng.normal(0, 0.2, 4).astype(np.float32)
    bn.buffers["var"] = rng.uniform(0.5, 2, 4).astype(np.float32)
    for layer in (model.root.layers[0], model.root.layers[4], model.root.layers[7]):
        layer.params["b"] = rng.normal(0, 0.1, layer.params["b"].shape).astype(np.float32)
    x = rng.standard_normal((1, 1, 12, 12)).astype(np.float32)
    probabilities, _, ours = explain(model, x, k)

    torch, net = torch_net(model)
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    a = net[:6](xt)  # the map of the last convolution, after its ReLU
    a.retain_grad()
    logits = net[6:](a)
    logits[0, k].backward()
    alpha = a.grad[0].mean(dim=(1, 2))
    cam = torch.relu((alpha[:, None, None] * a[0]).sum(0)).detach().numpy()
    saliency = xt.grad[0].abs().amax(0).numpy()
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 1)[0].detach().numpy(), rtol=1e-5)
    assert ours.cam.shape == (4, 4) and ours.heat.shape == (12, 12) and 0 < np.count_nonzero(cam) < 16
    np.testing.assert_allclose(ours.cam, cam, rtol=1e-4, atol=1e-6 * cam.max())
    np.testing.assert_allclose(ours.saliency, saliency, rtol=1e-4, atol=1e-6 * saliency.max())


def test_the_heat_map_sits_where_the_last_map_looks():
    """A valid convolution's 4x4 map looks at the input's middle: unit (i, j) is centred at
    ``start + 2 i`` with start 3 (as ``shape-calc`` prints it), not stretched over the input."""
    model = model_of(TORCH_NET)
    info = cam_layer(model)[1]
    assert (info.field.start, info.field.j) == (3.0, 2)
    cam = np.zeros((4, 4))
    cam[0, 3] = 1.0  # centred at (3, 9) in the input's pixel edges
    heat = on_input(cam, info, (12, 12))
    assert heat[2, 9] == 1.0 and heat[3, 9] == 0.75 and heat[2, 8] == 0.75  # pixel centres 2.5, 3.5, 8.5
    assert heat[1, 9] == 0.0 and heat[2, 10] == 0.0  # held up to half a jump beyond a unit, then cold


# Grad-CAM on a photo


def blob_model():
    """A hand-set network: channel 1 finds ink (a box filter), channel 2 the paper around it (the
    negative box filter, since the normalised background is below zero); class 0 counts channel
    1, class 1 channel 2."""
    model = model_of("28x28x1 conv:2,f=3,p=same relu flatten fc:2")
    conv, _, _, fc = model.root.layers
    conv.params["w"][:] = np.stack([KERNELS["box"].array(), -KERNELS["box"].array()])[:, None]
    conv.params["b"][:] = 0
    fc.params["w"][:] = 0
    fc.params["w"][0, : 28 * 28] = 1.0  # flatten is channel-major: channel 1's units first
    fc.params["w"][1, 28 * 28 :] = 1.0
    fc.params["b"][:] = 0
    return model


def blob_photo(path):
    """Light paper with one dark, digit-sized blob off-centre (up and to the right): a thick 'L',
    lopsided so that a map flipped or shifted on its way back to the photo misses it. Returns the
    path, the ink, and the ink widened by what a 3x3 box filter reaches in the photo's pixels."""
    im = Image.new("L", (200, 150), 225)
    draw = ImageDraw.Draw(im)
    draw.rectangle([120, 15, 136, 85], fill=25)
    draw.rectangle([120, 70, 165, 85], fill=25)
    im.save(path)
    ink = Image.fromarray(((np.asarray(im) < 128) * 255).astype(np.uint8))
    near = np.asarray(ink.filter(ImageFilter.MaxFilter(15))) > 0
    return path, np.asarray(ink) > 0, near


def test_grad_cam_on_the_photo_lies_in_the_blob(tmp_path):
    path, ink, near = blob_photo(tmp_path / "blob.png")
    model_path = save(tmp_path / "blob.npz", blob_model())
    for k in (0, 1):
        result = features(FeaturesRequest(model_path, path, tmp_path / f"c{k}", target=str(k)))
        photo = result.heat_on_photo(ink.shape)
        x, y = result.peak_photo
        if k == 0:  # the ink's class: its heat lies on the blob, the peak too
            assert photo[near].sum() / photo.sum() > 0.9 and ink[y, x]
        else:  # the paper's class: next to nothing on the blob
            assert photo[ink].sum() / photo.sum() < 0.05 and not ink[y, x]
        np.testing.assert_array_equal(
            np.load(tmp_path / f"c{k}-gradcam.npy"), result.explanation.heat.astype(np.float32)
        )


def test_the_photo_heat_is_zero_outside_the_network_input(tmp_path):
    path, ink, _ = blob_photo(tmp_path / "blob.png")
    result = features(FeaturesRequest(save(tmp_path / "blob.npz", blob_model()), path, tmp_path / "c", target="1"))
    photo = result.heat_on_photo(ink.shape)
    (top, left), (bottom, right) = result.placement.to_photo(0, 0), result.placement.to_photo(28, 28)
    assert top > 0 and left > 0  # the 28x28 field covers less than the photo here
    assert not photo[: int(top) - 1].any() and not photo[:, : int(left) - 1].any()
    assert photo[int(top) + 2 : int(top) + 6, int(left) + 2 : int(left) + 6].min() > 0  # the paper, class 1
    assert not photo[int(bottom) + 1 :].any() and not photo[:, int(right) + 1 :].any()


def test_a_peak_in_the_inputs_padding_is_not_put_on_the_photo(tmp_path):
    """A dash as wide as the photo fills the 20-pixel box's width, so the field's first columns
    lie left of the photo; the paper's class peaks there (a plateau, first maximum at (1, 1))."""
    from convcli.render.features import features_dict

    im = Image.new("L", (100, 60), 225)
    ImageDraw.Draw(im).rectangle([0, 25, 99, 35], fill=25)
    im.save(tmp_path / "dash.png")
    result = features(
        FeaturesRequest(save(tmp_path / "m.npz", blob_model()), tmp_path / "dash.png", tmp_path / "c", target="1")
    )
    assert result.explanation.peak == (1, 1) and result.placement.to_photo(1.5, 1.5)[1] < 0
    assert result.peak_photo is None
    grad = features_dict(result)["gradcam"]
    assert grad["peak"] is None and grad["peak_input"] == {"x": 1, "y": 1}
