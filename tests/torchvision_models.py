"""torchvision's classification models, exported to ONNX files, for the tests and the benchmark
that read them back (`tests/interop/test_onnx_torchvision.py`, `benchmarks/bench_onnx.py`).

torchvision's fake-op registrations fail beside a torch build they were not compiled for
("operator torchvision::nms does not exist"); the model definitions need none of them, so that
module is stubbed before torchvision is imported.
"""

from __future__ import annotations

import sys
import types
import warnings

NAMES = ("resnet18", "resnet50", "mobilenet_v2", "googlenet", "squeezenet1_1", "efficientnet_b0", "densenet121")


def models():
    """``torchvision.models`` (ImportError or RuntimeError when torchvision cannot be imported)."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    from torchvision import models

    return models


def published(name: str) -> dict:
    """What torchvision's weights record of ``name``: ``_ops`` (GFLOPS, i.e. GMACs), ``num_params``."""
    return models().get_model_weights(name).DEFAULT.meta


def export(name: str, path) -> None:
    """``name`` with weights drawn at random (none alike, so the exporter shares no tensor between
    layers, as with trained weights), exported in eval mode at 224 x 224 by the TorchScript
    exporter (``dynamo=False``: the default exporter of torch 2.13 needs onnxscript)."""
    import torch

    extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    model = models().get_model(name, **extra).eval()
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
    import numpy as np
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims)
