"""Classic architectures as specs, written in the words a user types.

Each entry is the input shape and layer words of the model as its reference implementation builds
it (the source is named). ``convcli params --list`` prints this table; tests check every total
against the published figure (shared/REFERENCE.md).
"""

from __future__ import annotations

from typing import NamedTuple

from convcli.errors import SpecError, did_you_mean
from convcli.networks import spec as S
from convcli.networks.report import analyse
from convcli.networks.words import parse_shape, parse_words


def _repeat(word: str, n: int) -> str:
    return " ".join([word] * n)


def _vgg(bn: bool) -> str:
    unit = "conv:{},f=3,p=1 bn relu" if bn else "conv:{},f=3,p=1 relu"
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    body = " ".join("maxpool:2" if c == "M" else unit.format(c) for c in cfg)
    return f"224x224x3 {body} adaptivepool:7 flatten fc:4096 relu dropout fc:4096 relu dropout fc:1000"


_RESNET_STEM = "224x224x3 conv:64,f=7,s=2,p=3,bias=0 bn relu maxpool:3,2,1"
_RESNET_HEAD = "gap flatten fc:1000"


def _resnet(block: str, counts: tuple[int, int, int, int]) -> str:
    stages = []
    for i, (c, n) in enumerate(zip((64, 128, 256, 512), counts)):
        first = f"{block}:{c}" + (",s=2" if i else "")
        stages.append(" ".join([first] + [f"{block}:{c}"] * (n - 1)))
    return f"{_RESNET_STEM} {' '.join(stages)} {_RESNET_HEAD}"


def _inc(args: str) -> str:
    return f"inception:{args},f5=3,bn=1"


_GOOGLENET = " ".join(
    [
        "224x224x3 conv:64,f=7,s=2,p=3,bias=0 bn:0.001 relu maxpool:3,2,ceil=1",
        "conv:64,f=1,bias=0 bn:0.001 relu conv:192,f=3,p=1,bias=0 bn:0.001 relu maxpool:3,2,ceil=1",
        _inc("64,96-128,16-32,32"),
        _inc("128,128-192,32-96,64"),
        "maxpool:3,2,ceil=1",
        _inc("192,96-208,16-48,64"),
        _inc("160,112-224,24-64,64"),
        _inc("128,128-256,24-64,64"),
        _inc("112,144-288,32-64,64"),
        _inc("256,160-320,32-128,128"),
        "maxpool:2,2,ceil=1",
        _inc("256,160-320,32-128,128"),
        _inc("384,192-384,48-128,128"),
        "gap flatten dropout:0.2 fc:1000",
    ]
)

_MOBILENET_V1 = " ".join(
    [
        "224x224x3 conv:32,f=3,s=2,p=tf,bias=0 bn:0.001 relu6",
        "dwsep:64 dwsep:128,s=2 dwsep:128 dwsep:256,s=2 dwsep:256 dwsep:512,s=2",
        _repeat("dwsep:512", 5),
        "dwsep:1024,s=2 dwsep:1024 gap dropout:0.001 conv:1000,f=1 flatten softmax",
    ]
)

_MOBILENET_V2 = " ".join(
    [
        "224x224x3 conv:32,f=3,s=2,p=1,bias=0 bn relu6 invres:16,t=1",
        "invres:24,s=2 invres:24",
        "invres:32,s=2",
        _repeat("invres:32", 2),
        "invres:64,s=2",
        _repeat("invres:64", 3),
        _repeat("invres:96", 3),
        "invres:160,s=2",
        _repeat("invres:160", 2),
        "invres:320",
        "conv:1280,f=1,bias=0 bn relu6 gap flatten dropout:0.2 fc:1000",
    ]
)


# Networks sized for handwritten digits, one of each family, trained by ``convcli train``
# (defaults and recipes in convcli.training.recipes).
DIGIT_NETWORKS: dict[str, str] = {
    # 98.05-98.89% test accuracy on the built-in digits over seeds 0-7, in about 4 s (20 epochs,
    # Adam, cosine); without its batch norm and second 8x8 convolution 96.9-98.1%
    "digits-cnn": "8x8x1 conv:32,f=3,p=same,bias=0 bn relu conv:32,f=3,p=same,bias=0 bn relu maxpool:2 "
    "conv:64,f=3,p=same,bias=0 bn relu flatten dropout:0.3 fc:10",
    "mnist-cnn": "28x28x1 conv:32,f=3,p=same relu maxpool:2 conv:64,f=3,p=same relu maxpool:2 "
    "flatten dropout:0.3 fc:10",
    "mnist-resnet": "28x28x1 conv:16,f=3,p=1,bias=0 bn relu res:16 res:32,s=2 res:64,s=2 gap flatten fc:10",
    "mnist-mobilenet": "28x28x1 conv:16,f=3,p=1,bias=0 bn relu6 dwsep:32 dwsep:64,s=2 dwsep:128,s=2 gap flatten fc:10",
    # GoogLeNet's module (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1, batch norm as torchvision) at 14x14
    # (8+16+8+8 = 40 maps) and 7x7 (16+32+16+16 = 80 maps)
    "mnist-inception": "28x28x1 conv:16,f=3,p=1,bias=0 bn relu maxpool:2 inception:8,8-16,4-8,8,bn=1 "
    "maxpool:2 inception:16,16-32,8-16,16,bn=1 gap flatten fc:10",
}

_FAMILIES = {
    "cnn": "plain CNN",
    "resnet": "residual blocks",
    "mobilenet": "depthwise-separable blocks",
    "inception": "Inception modules",
}


class ZooEntry(NamedTuple):
    name: str
    description: str
    source: str
    words: str


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "lenet5",
            "LeNet-5, modern: ReLU, max-pool, full C3, 120-84-10",
            "LeCun et al. 1998, as usually rebuilt today",
            "32x32x1 conv:6,f=5 relu maxpool:2 conv:16,f=5 relu maxpool:2 flatten fc:120 relu fc:84 relu fc:10",
        ),
        ZooEntry(
            "lenet5-1998",
            "LeNet-5 as published: partial C3 table, trainable subsampling, RBF output",
            "LeCun, Bottou, Bengio, Haffner 1998, section II.B",
            "32x32x1 conv:6,f=5 subsample:2 scaledtanh conv:16,f=5,table=lenet5 subsample:2 "
            "scaledtanh conv:120,f=5 scaledtanh flatten fc:84 scaledtanh rbf:10",
        ),
        ZooEntry(
            "alexnet",
            "AlexNet, one tower, widths 64/192/384/256/256",
            "torchvision.models.alexnet",
            "224x224x3 conv:64,f=11,s=4,p=2 relu maxpool:3,2 conv:192,f=5,p=2 relu maxpool:3,2 "
            "conv:384,f=3,p=1 relu conv:256,f=3,p=1 relu conv:256,f=3,p=1 relu maxpool:3,2 "
            "adaptivepool:6 flatten dropout fc:4096 relu dropout fc:4096 relu fc:1000",
        ),
        ZooEntry("vgg16", "VGG-16 (configuration D)", "torchvision.models.vgg16", _vgg(False)),
        ZooEntry("vgg16-bn", "VGG-16 with batch norm", "torchvision.models.vgg16_bn", _vgg(True)),
        ZooEntry("resnet18", "ResNet-18, basic blocks", "torchvision.models.resnet18", _resnet("res", (2, 2, 2, 2))),
        ZooEntry("resnet34", "ResNet-34, basic blocks", "torchvision.models.resnet34", _resnet("res", (3, 4, 6, 3))),
        ZooEntry(
            "resnet50",
            "ResNet-50 V1.5 (stride in the 3x3 of the bottleneck)",
            "torchvision.models.resnet50",
            _resnet("bottleneck", (3, 4, 6, 3)),
        ),
        ZooEntry(
            "googlenet",
            "GoogLeNet / Inception v1 with batch norm, no auxiliary heads; "
            "3x3 kernels in the '5x5' branch as torchvision builds it",
            "torchvision.models.googlenet",
            _GOOGLENET,
        ),
        ZooEntry(
            "mobilenet-v1",
            "MobileNet V1, width 1.0 (ReLU6, conv classifier)",
            "keras.applications.MobileNet(alpha=1.0)",
            _MOBILENET_V1,
        ),
        ZooEntry("mobilenet-v2", "MobileNet V2, width 1.0", "torchvision.models.mobilenet_v2", _MOBILENET_V2),
        *(
            ZooEntry(
                name,
                f"{_FAMILIES[name.split('-')[1]]}, sized for {words.split()[0]} digits",
                "convcli (trainable with convcli train)",
                words,
            )
            for name, words in DIGIT_NETWORKS.items()
        ),
    )
}


def get(name: str, input_shape: str | None = None) -> S.Network:
    """The zoo network ``name``, optionally on another input shape ``HxWxC``."""
    entry = ZOO.get(name.lower())
    if entry is None:
        raise SpecError(
            f"unknown zoo model '{name}'{did_you_mean(name.lower(), ZOO, cutoff=0.5)}; see 'convcli params --list'"
        )
    words = entry.words.split()
    if input_shape is not None:
        parse_shape(input_shape)
        words[0] = input_shape
    return parse_words(words, name=entry.name)


def zoo_table() -> list[dict]:
    """Every zoo model with its input, parameter and MAC totals (what ``params --list`` prints)."""
    rows = []
    for entry in ZOO.values():
        report = analyse(get(entry.name))
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "source": entry.source,
                "input": list(report.input_shape),
                "params": report.total("params"),
                "macs": report.total("macs"),
            }
        )
    return rows
