"""ONNX files of torchvision's models and of convcli's zoo, read back: MACs as torchvision publishes
them, parameters as the file holds them, the same report as the zoo's spec."""

from __future__ import annotations

import sys
import types
import warnings

import pytest

from convcli.networks.costs import Counting
from convcli.networks.load import load_network
from convcli.networks.report import analyse, walk

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

# torchvision's fake-op registrations fail beside a torch build they were not compiled for
# ("operator torchvision::nms does not exist"); the model definitions need none of them.
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
try:
    from torchvision import models
except Exception as err:  # pragma: no cover - depends on the installed pair
    pytest.skip(f"torchvision does not import: {err}", allow_module_level=True)

TORCHVISION = ("resnet18", "resnet50", "mobilenet_v2", "googlenet", "squeezenet1_1", "efficientnet_b0", "densenet121")


def export_torchvision(name: str, path) -> None:
    """``name`` with weights drawn at random (none alike, so the exporter shares no tensor between
    layers, as with trained weights), exported in eval mode as torch.onnx.export does by default."""
    extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    model = models.get_model(name, **extra).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), dynamo=False)


def file_weights(path) -> int:
    """Every float array the file holds, numbers alone (shapes, bounds) left out."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torchvision")
    done = {}

    def get(name: str):
        if name not in done:
            done[name] = folder / f"{name}.onnx"
            export_torchvision(name, done[name])
        return done[name]

    return get


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_macs_are_its_published_gflops_and_params_the_files_weights(exported, name):
    path = exported(name)
    meta = models.get_model_weights(name).DEFAULT.meta
    report = analyse(load_network([str(path)]), Counting(keras=True))
    assert round(report.totals.macs / 1e9, 3) == meta["_ops"]
    assert report.totals.params == file_weights(path)
    assert report.unknown_operators == {}


def test_folded_batch_norm_is_said(exported):
    network = load_network([str(exported("resnet18"))])
    assert "batch norm folded into conv: 20 layers (the exporter made their biases)" in network.notes


def test_squeeze_and_excitation_reads_as_scale_blocks(exported):
    report = analyse(load_network([str(exported("efficientnet_b0"))]))
    scales = [info for info in walk(report.layers) if info.kind == "scale"]
    assert len(scales) == 16  # one a MBConv block
    assert [info.kind for info in walk(scales[0].children[0][1])] == ["gap", "conv", "swish", "conv", "sigmoid"]


ZOO = ("lenet5", "resnet18", "googlenet", "mobilenet-v1", "mobilenet-v2", "mnist-resnet", "mnist-inception")


@pytest.mark.parametrize("name", ZOO)
def test_a_zoo_model_exported_reads_back_to_its_report(tmp_path, name):
    from convcli.interop.export import ExportRequest, export

    path = tmp_path / f"{name}.onnx"
    export(ExportRequest((name,), path))
    zoo, back = analyse(load_network([name])), analyse(load_network([str(path)]))
    assert back.input_shape == zoo.input_shape and back.output_shape == zoo.output_shape
    for key in ("params", "trainable_params", "non_trainable_params", "macs", "flops"):
        assert getattr(back.totals, key) == getattr(zoo.totals, key), key
    # the file keeps no dropout (an Identity), softmax or block names: the layers themselves agree
    skip = ("dropout", "flatten", "softmax")
    leaves = [(i.kind, i.out_shape, i.params, i.macs) for i in walk(zoo.layers) if not i.children and i.kind not in skip]
    assert [(i.kind, i.out_shape, i.params, i.macs) for i in walk(back.layers) if not i.children and i.kind not in skip] == leaves
