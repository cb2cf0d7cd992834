"""Every zoo model against its published totals (shared/REFERENCE.md and the torchvision / Keras
model pages), plus the layer counts torch itself reports where it is installed."""

import pytest

from convcli.networks import zoo
from convcli.networks.costs import Counting
from convcli.networks.report import analyse, walk

# (trainable params, MACs printed as torchvision prints GFLOPS: to two decimals, in G)
PUBLISHED = {
    "lenet5": (61_706, None),
    "alexnet": (61_100_840, 0.71),
    "vgg16": (138_357_544, 15.47),
    "vgg16-bn": (138_365_992, 15.47),
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet50": (25_557_032, 4.09),
    "googlenet": (6_624_904, 1.50),
    "mobilenet-v2": (3_504_872, 0.30),
    "mobilenet-v1": (4_231_976, 0.57),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_totals(name):
    params, gmacs = PUBLISHED[name]
    report = analyse(zoo.get(name))
    assert report.total("params") == params
    if gmacs is not None:
        assert round(report.total("macs") / 1e9, 2) == gmacs
    assert report.output_shape in ((10,), (1000,))


def test_lenet5_1998_has_60000_trainable_parameters():
    report = analyse(zoo.get("lenet5-1998"))
    assert report.total("params") == 60_000
    c3 = report.layers[3]
    assert c3.params == 1_516 and c3.out_shape == (10, 10, 16)
    assert report.total("frozen") == 84 * 10  # the RBF centres are fixed, not trained


def test_keras_counts_batch_norm_statistics():
    keras = analyse(zoo.get("mobilenet-v1"), Counting(keras=True)).totals
    assert keras.params == 4_253_864  # keras.applications.MobileNet().count_params()
    assert keras.non_trainable_params == 21_888
    assert keras.trainable_params == 4_231_976


def test_mobilenet_v1_mult_adds_match_the_paper():
    # Howard et al. 2017, Table 8: 569 million mult-adds, 4.2 million parameters.
    assert round(analyse(zoo.get("mobilenet-v1")).total("macs") / 1e6) == 569


def test_resnet50_receptive_field_depends_on_where_the_stride_sits():
    v15 = analyse(zoo.get("resnet50"))
    words = zoo.ZOO["resnet50"].words.replace("s=2", "s=2,v=1").replace("conv:64,f=7,s=2,v=1", "conv:64,f=7,s=2")
    v1 = analyse(zoo.parse_words(words.split()))
    assert v15.total("params") == v1.total("params")
    assert v15.layers[-4].field.r != v1.layers[-4].field.r


def test_other_input_sizes():
    report = analyse(zoo.get("resnet18", "32x32x3"))
    assert report.layers[-3].in_shape == (1, 1, 512)
    assert report.total("params") == 11_689_512
    alexnet = analyse(zoo.get("alexnet", "223x223x3"))  # (223 + 4 - 11)/4 + 1 = 55 exactly
    assert alexnet.layers[0].out_shape == (55, 55, 64) and not alexnet.layers[0].warnings


def test_alexnet_224_drops_a_row_and_says_so():
    first = analyse(zoo.get("alexnet")).layers[0]
    assert first.out_shape == (55, 55, 64)  # p=2: (224 + 4 - 11)/4 + 1 = 55.25
    assert any("55.25" in w for w in first.warnings)


def _torch_module(name):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(25088, 4096),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(4096, 1000),
    )


@pytest.mark.parametrize("name", ["lenet5", "vgg16"])
def test_torch_agrees_layer_by_layer(name):
    torch = pytest.importorskip("torch")
    module = _torch_module(name)
    report = analyse(zoo.get(name))
    assert sum(p.numel() for p in module.parameters()) == report.total("params")
    h, w, c = report.input_shape
    x = torch.zeros(1, c, h, w)
    with torch.no_grad():
        for layer, info in zip(module, report.layers):
            x = layer(x)
            shape = tuple(x.shape[1:])
            expected = info.out_shape if len(info.out_shape) == 1 else (info.out_shape[2], *info.out_shape[:2])
            assert shape == expected, info.word


def test_blocks_expand_into_containers():
    report = analyse(zoo.get("resnet50"))
    block = report.layers[4]
    assert block.kind == "bottleneck" and [name for name, _ in block.children] == ["body", "shortcut"]
    assert sum(1 for _ in walk(report.layers)) > 150


def test_vgg16_receptive_field_is_the_published_212():
    # Araujo, Norris & Sim, Distill 2019, Table 1: VGG-16 (up to pool5) has a 212-pixel field.
    report = analyse(zoo.get("vgg16"))
    pool5 = [info for info in report.layers if info.kind == "maxpool"][-1]
    assert (pool5.field.r, pool5.field.j) == (212, 32)
