"""ONNX files of torchvision's models and of convcli's zoo, read back: MACs as torchvision publishes
them, parameters as the file holds them, the same report as the zoo's spec."""

from __future__ import annotations

import pytest

from convcli.networks.costs import Counting
from convcli.networks.load import load_network
from convcli.networks.report import analyse, walk

from torchvision_models import NAMES, export, file_weights, published

pytest.importorskip("onnx")
pytest.importorskip("torch")
try:
    from torchvision_models import models

    models()
except Exception as err:  # pragma: no cover - depends on the installed pair
    pytest.skip(f"torchvision does not import: {err}", allow_module_level=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torchvision")
    done = {}

    def get(name: str):
        if name not in done:
            done[name] = folder / f"{name}.onnx"
            export(name, done[name])
        return done[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_macs_are_its_published_gflops_and_params_the_files_weights(exported, name):
    path = exported(name)
    meta = published(name)
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
    from convcli.interop import export as convcli_export

    path = tmp_path / f"{name}.onnx"
    convcli_export.export(convcli_export.ExportRequest((name,), path))
    zoo, back = analyse(load_network([name])), analyse(load_network([str(path)]))
    assert back.input_shape == zoo.input_shape and back.output_shape == zoo.output_shape
    for key in ("params", "trainable_params", "non_trainable_params", "macs", "flops"):
        assert getattr(back.totals, key) == getattr(zoo.totals, key), key
    # the file keeps no dropout (an Identity), softmax or block names: the layers themselves agree
    skip = ("dropout", "flatten", "softmax")
    leaves = [
        (i.kind, i.out_shape, i.params, i.macs) for i in walk(zoo.layers) if not i.children and i.kind not in skip
    ]
    assert [
        (i.kind, i.out_shape, i.params, i.macs) for i in walk(back.layers) if not i.children and i.kind not in skip
    ] == leaves
