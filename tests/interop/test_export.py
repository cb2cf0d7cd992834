"""convcli export: every digit network's checkpoint written as ONNX and as a PyTorch module gives
convcli's logits (onnxruntime and torch, within 1e-4) and its predictions on every test image;
the ONNX file is opset 17 and passes onnx.checker; pooling and padding variants the digit
networks do not use agree too; bad input is one Error: line and writes nothing."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from convcli.interop import layers as X
from convcli.networks.report import analyse
from convcli.networks.words import parse_words
from convcli.networks.zoo import DIGIT_NETWORKS
from convcli.nn import checkpoint as ckpt
from convcli.nn.checkpoint import DataInfo, Metadata
from convcli.nn.model import build_model
from convcli.training.datasets import load_digits
from convcli.training.loop import TrainConfig, predict_logits, prepare_images
from convcli.training.run import load_spec
from convcli.training.trained import load_model

from conftest import failed, run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

NETWORKS = (*DIGIT_NETWORKS, "lenet5")
N_IMAGES = 100


def digit_images(size: int) -> np.ndarray:
    """The last N_IMAGES of the built-in 8x8 digits, or those digits scaled 3x and padded to 28x28."""
    images = load_digits().images[-N_IMAGES:]  # N, 1, 8, 8
    if size == 8:
        return images
    big = np.kron(images, np.ones((1, 1, 3, 3), np.float32))  # N, 1, 24, 24
    return np.pad(big, ((0, 0), (0, 0), (2, 2), (2, 2)))


def make_checkpoint(path, words, image_shape, seed=0):
    """A checkpoint as 'convcli train' saves one, its weights random and its batch norm
    statistics, scales and shifts and its biases drawn by hand (never the identity)."""
    network = load_spec(tuple(words))
    model = build_model(analyse(network), seed=seed)
    rng = np.random.default_rng(seed + 1)
    state = {}
    for name, value in model.state_dict().items():
        draw = {
            "mean": lambda n: rng.normal(0, 0.3, n),
            "var": lambda n: rng.uniform(0.5, 2.0, n),
            "gamma": lambda n: rng.uniform(0.5, 1.5, n),
            "beta": lambda n: rng.normal(0, 0.2, n),
            "b": lambda n: rng.normal(0, 0.1, n),
        }.get(name.rsplit(".", 1)[-1])
        state[name] = value if draw is None else draw(value.shape).astype(np.float32)
    model.load_state_dict(state)
    k = model.report.layers[-1].out_shape[-1]
    info = DataInfo("digits", tuple(map(str, range(k))), image_shape, 0.3, 0.4, 0, 0.1, 0.2, 0, {})
    return ckpt.save(path, model.state_dict(), {}, Metadata(network, TrainConfig(epochs=1), info, epoch=1))


def convcli_logits(path, images):
    model, saved = load_model(path)
    return predict_logits(model, prepare_images(images, saved.network.input, saved.meta.data.mean, saved.meta.data.std))


def onnx_logits(path, images):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"image": images})[0]


def torch_logits(path, images, checkpoint=None):
    torch = pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net.from_checkpoint(checkpoint)
    with torch.no_grad():
        return net(torch.from_numpy(images)).numpy()


def agree(expected, got):
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.fixture(scope="module", params=NETWORKS)
def digit_checkpoint(request, tmp_path_factory):
    """A checkpoint of one digit network (lenet5 for 28x28 digits padded into its 32x32), its test
    images and convcli's logits on them."""
    name = request.param
    size = 8 if name == "digits-cnn" else 28
    folder = tmp_path_factory.mktemp(name)
    path = make_checkpoint(folder / f"{name}.npz", [name], (1, size, size))
    images = digit_images(size)
    return name, path, images, convcli_logits(path, images)


def test_onnx_gives_convcli_logits(digit_checkpoint):
    name, path, images, expected = digit_checkpoint
    out = path.with_suffix(".onnx")
    result = run("export", path, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # trained weights, no softmax to drop: nothing to note
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["logits"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N" and not batch.HasField("dim_value")
    props = {p.key: p.value for p in model.metadata_props}
    assert float(props["convcli.mean"]) == 0.3 and float(props["convcli.std"]) == 0.4
    assert props.get("convcli.input_padding") == ("2" if name == "lenet5" else None)
    assert json.loads(props["convcli.class_names"]) == [str(k) for k in range(10)]
    agree(expected, onnx_logits(out, images))


def test_pytorch_module_gives_convcli_logits(digit_checkpoint):
    name, path, images, expected = digit_checkpoint
    out = path.parent / f"{name.replace('-', '_')}.py"
    result = run("export", path, "-o", out)
    assert result.exit_code == 0, result.stderr
    agree(expected, torch_logits(out, images))  # the checkpoint named in the file, beside it


# Layers and geometry the digit networks do not exercise: uneven padding (p=same with an even
# window, TensorFlow's p=tf with a stride), dilation, groups, ceil mode, average pooling that
# counts its padding or not, batch norm on features, a block's own activation, every activation.
VARIANTS = [
    "10x10x2 conv:4,f=4,p=same conv:6,f=3,s=2,p=tf relu maxpool:2,ceil=1 maxpool:2,s=1,p=same flatten fc:5",
    "10x10x2 conv:4,f=3,d=2,p=2,g=2 leakyrelu avgpool:3,s=2,p=1,ceil=1 tanh avgpool:2,p=1,count_pad=0 flatten fc:3",
    "8x8x3 dwconv:f=3,m=2 sigmoid avgpool:2,s=1,p=same swish adaptivepool:2 flatten fc:6 bn relu6 dropout fc:4",
    "9x9x3 conv:8,f=3,p=1 res:8 res:16,s=2 gmp fc:3 softmax",
    "12x12x1 conv:16,f=3,p=1 invres:16,t=2 invres:24,s=2 inception:4,4-8,2-4,4 gap flatten fc:2",
]


@pytest.mark.parametrize("words", VARIANTS)
def test_layer_variants_agree(words, tmp_path):
    network = parse_words(words.split())
    h, w, c = network.input
    path = make_checkpoint(tmp_path / "m.npz", words.split(), (c, h, w), seed=3)
    images = np.random.default_rng(0).random((7, c, h, w), dtype=np.float32)
    expected = convcli_logits(path, images)
    for out, logits in ((tmp_path / "m.onnx", onnx_logits), (tmp_path / "m.py", torch_logits)):
        result = run("export", path, "-o", out)
        assert result.exit_code == 0, result.stderr
        agree(expected, logits(out, images))


def test_a_spec_exports_with_the_weights_train_starts_from(tmp_path):
    out = tmp_path / "resnet.onnx"
    result = run("export", "mnist-resnet", "-o", out, "--seed", 4, "--json")
    assert result.exit_code == 0, result.stderr
    assert "the weights are random (seed 4" in result.stderr
    doc = json.loads(result.stdout)
    assert (doc["weights"], doc["seed"], doc["normalisation"]) == ("random", 4, None)
    model = build_model(analyse(load_spec(("mnist-resnet",))), seed=4)
    model.eval()
    images = digit_images(28)[:10]
    agree(model.forward(images), onnx_logits(out, images))


def test_a_spec_exports_to_a_module_that_loads_a_checkpoint_of_it(tmp_path):
    out = tmp_path / "net.py"
    result = run("export", "digits-cnn", "-o", out)
    assert result.exit_code == 0 and "Net.from_checkpoint(FILE.npz)" in result.stderr
    path = make_checkpoint(tmp_path / "trained.npz", ["digits-cnn"], (1, 8, 8))
    images = digit_images(8)[:20]
    agree(convcli_logits(path, images), torch_logits(out, images, checkpoint=path))


def test_the_module_runs_as_a_script(tmp_path):
    import subprocess

    pytest.importorskip("torch")
    path = make_checkpoint(tmp_path / "lenet5.npz", ["lenet5"], (1, 28, 28))
    out = tmp_path / "lenet.py"
    assert run("export", path, "-o", out).exit_code == 0
    done = subprocess.run([sys.executable, out.name], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "61,706 parameters" in done.stdout and "image 1 x 1 x 28 x 28 -> logits (1, 10)" in done.stdout


def test_the_writers_cover_every_activation_convcli_holds():
    from convcli.interop import onnx_out, torch_out

    assert set(onnx_out.ACTIVATIONS) == set(torch_out.ACTIVATIONS) == set(X.ACTIVATIONS)


@pytest.fixture
def trained(tmp_path):
    return make_checkpoint(tmp_path / "m.npz", ["digits-cnn"], (1, 8, 8))


@pytest.mark.parametrize(
    "args, words",
    [
        (["lenet5-1998", "-o", "{tmp}/x.onnx"], ["layer 'subsample:2' (subsample) cannot be exported"]),
        (["lenet5-1998", "-o", "{tmp}/x.py"], ["layer 'subsample:2'"]),
        (["8x8x1", "conv:4", "gelu", "flatten", "fc:10", "-o", "{tmp}/x.onnx"], ["'gelu' (activation gelu)"]),
        (["{tmp}/m.npz", "-o", "{tmp}/x.pt"], ["-o {tmp}/x.pt", ".onnx", ".py"]),
        (["{tmp}/m.npz", "-o", "{tmp}/link.onnx"], ["-o {tmp}/link.onnx is also an input"]),
        (["{tmp}/m.npz", "-o", "{tmp}/x.onnx", "--seed", "1"], ["--seed 1", "is a checkpoint"]),
        (["{tmp}/junk.npz", "-o", "{tmp}/x.onnx"], ["not a readable .npz"]),
        (["{tmp}/data.npz", "-o", "{tmp}/x.onnx"], ["not a convcli checkpoint"]),
        (["{tmp}/missing.npz", "-o", "{tmp}/x.py"], ["no such file"]),
        (["9x9x1 avgpool:2,s=1,p=same,count_pad=0 flatten fc:2", "-o", "{tmp}/x.py"], ["average pooling", ".onnx"]),
        (["{tmp}/m.npz", "-o", "{tmp}/nowhere/x.onnx"], ["does not exist"]),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(args, words, trained, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "data.npz", x=np.zeros(3))
    (tmp_path / "link.onnx").symlink_to(trained)  # the checkpoint under an output's name
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(tmp=tmp_path) for a in args]
    if " " in args[0]:
        args = args[0].split() + args[1:]
    result = run("export", *args)
    assert failed(result, *(w.format(tmp=tmp_path) for w in words))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_without_onnx_installed_the_message_says_how_to_get_it(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    result = run("export", trained, "-o", tmp_path / "m.onnx")
    assert failed(result)
    assert result.stderr == 'Error: writing .onnx files needs the onnx package: pip install "convcli[onnx]"\n'
    assert not (tmp_path / "m.onnx").exists()
    assert run("export", trained, "-o", tmp_path / "m.py").exit_code == 0  # the module needs no onnx


def test_a_network_over_what_one_onnx_file_holds_is_refused_before_its_weights_exist(tmp_path, monkeypatch):
    from convcli.interop import onnx_out

    monkeypatch.setattr(onnx_out, "MAX_BYTES", 4 * 1000)
    result = run("export", "8x8x1", "flatten", "fc:1000", "-o", tmp_path / "big.onnx")  # 65,000 weights
    assert failed(result, "0.00 GiB", "one ONNX file holds")
    assert list(tmp_path.iterdir()) == []
