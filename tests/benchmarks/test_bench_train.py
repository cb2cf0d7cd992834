"""benchmarks/bench_train.py's PyTorch reference is the network of the report, layer for layer:
each module's output shape and parameter count are the report's, and with convcli's initial
weights copied in it computes convcli's logits."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from convcli.networks.report import analyse
from convcli.networks.zoo import get
from convcli.nn.model import build_model, trainable_layers

from conftest import REPO

torch = pytest.importorskip("torch")

_spec = importlib.util.spec_from_file_location("bench_train", REPO / "benchmarks" / "bench_train.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def pairs(infos, module):
    """(report entry, module) for every layer, blocks before their inner layers."""
    assert len(infos) == len(module), (len(infos), len(module))
    for info, child in zip(infos, module):
        yield info, child
        if info.kind in ("res", "dwsep") or hasattr(child, "body"):
            parts = dict(info.children)
            yield from pairs(parts["body"], child.body)
            if "shortcut" in parts:
                yield from pairs(parts["shortcut"], child.shortcut)
            else:
                assert child.shortcut is None
        elif info.children:
            assert len(info.children) == len(child.branches)
            for (_, branch), sub in zip(info.children, child.branches):
                yield from pairs(branch, sub)


@pytest.mark.parametrize("name", bench.NETWORKS)
def test_reference_is_the_report_layer_for_layer(name):
    report = analyse(get(name))
    net = bench.torch_reference(report)
    layers = list(pairs(trainable_layers(report), net))
    shapes: dict[int, tuple] = {}

    def keep(k):
        def hook(module, inputs, output):
            shapes[k] = tuple(output.shape)

        return hook

    hooks = [module.register_forward_hook(keep(k)) for k, (_, module) in enumerate(layers)]
    h, w, c = report.network.input
    net(torch.zeros(2, c, h, w))
    for hook in hooks:
        hook.remove()
    for k, (info, module) in enumerate(layers):
        out = info.out_shape
        expected = (2, out[2], out[0], out[1]) if len(out) == 3 else (2, *out)
        assert shapes[k] == expected, (info.word, shapes[k], expected)
        assert sum(p.numel() for p in module.parameters()) == info.params, info.word
    assert sum(p.numel() for p in net.parameters()) == report.total("params")


@pytest.mark.parametrize("name", bench.NETWORKS)
def test_reference_computes_convcli_logits(name):
    report = analyse(get(name))
    model, net = build_model(report, seed=0), bench.torch_reference(report)
    ours = [layer.params[key] for _, layer, key in model.parameters()]
    theirs = list(net.parameters())
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
    with torch.no_grad():
        for p, value in zip(theirs, ours):
            p.copy_(torch.from_numpy(value))
    h, w, c = report.network.input
    x = np.random.default_rng(0).standard_normal((4, c, h, w)).astype(np.float32)
    model.eval()
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-4, atol=1e-4)
