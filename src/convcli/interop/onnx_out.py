"""An exported network as an ONNX model: opset 17, built node by node with `onnx.helper`.

The graph takes ``image`` (N x C x H x W float32, the batch dynamic) and gives ``logits``
(N x classes). The input preparation `convcli.training.loop.prepare_images` does for convcli is
the graph's first nodes (Pad, Sub, Div), and the metadata (``metadata_props``) says so, with the
network, where the weights come from and the class names.

Each convcli layer becomes the ONNX operator of the same meaning, with explicit pads:

- conv, dwconv: Conv (``group`` = C_in for depthwise); bn: BatchNormalization (running statistics);
  fc: Gemm with ``transB`` (after a Flatten when its input is 1 x 1 x C maps); flatten: Flatten;
  dropout: Identity; gap, gmp: GlobalAveragePool, GlobalMaxPool; relu6: Clip(0, 6);
  swish: x * Sigmoid(x); residual: Add; concat: Concat along channels.
- max pooling pads by the padding plus ceil mode's overhang (MaxPool ignores padded values, as
  convcli pads with -inf), so no ``ceil_mode`` is needed. Average pooling always runs with
  ``count_include_pad=0``: padding that counts in the mean is a Pad node in front, and the
  overhang, which convcli never counts, is AveragePool's own padding.

This module imports onnx; only an export to a ``.onnx`` file imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convcli import __version__
from convcli.interop import layers as X

OPSET = 17
IR_VERSION = 8  # the IR version that came with opset 17 (onnx 1.12): readers of opset 17 read it
MAX_BYTES = 2**31 - 2**24  # protobuf's 2 GiB limit on one message, less room for the graph itself


class _Graph:
    """Nodes and initialisers in the order they are added; every tensor is named by its node."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def sequence(self, nodes: tuple[X.Node, ...], x: str) -> str:
        for node in nodes:
            x = _WRITERS[type(node)](self, node, x)
        return x


def onnx_model(net: X.Exported) -> onnx.ModelProto:
    """The checked ONNX model of ``net`` (`onnx.checker.check_model`, shape inference included)."""
    g = _Graph()
    x = "image"
    if net.pad:
        p = net.pad
        x = g.node("Pad", [x, g.const("prepare.pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))], "prepare.pad")
    if net.normalised:
        x = g.node("Sub", [x, g.const("prepare.mean", np.float32(net.mean))], "prepare.sub")
        x = g.node("Div", [x, g.const("prepare.std", np.float32(net.std))], "prepare.div")
    x = g.sequence(net.layers, x)
    if g.nodes[-1].output[0] == x:
        g.nodes[-1].output[0] = "logits"
    else:  # an empty last block hands on its input
        g.node("Identity", [x], "logits")
    c, h, w = net.image
    graph = helper.make_graph(
        g.nodes,
        net.network.name or "convcli",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", net.n_outputs])],
        g.initializers,
        doc_string=net.words,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="convcli",
        producer_version=__version__,
        doc_string=f"{net.network.name or 'network'} exported by convcli export; input: {net.preparation}",
    )
    helper.set_model_props(model, metadata(net))
    onnx.checker.check_model(model, full_check=True)
    return model


def metadata(net: X.Exported) -> dict[str, str]:
    """The ``metadata_props``: what a user of the file needs to feed it and read its output."""
    props = {
        "convcli.version": __version__,
        "convcli.network": net.words,
        "convcli.weights": net.weights,
        "convcli.input": f"image, N x {' x '.join(map(str, net.image))} float32: {net.preparation}",
        "convcli.output": "logits"
        + (" (the network's final softmax left out: apply it for probabilities)" if net.softmax_dropped else ""),
    }
    if net.pad:
        props["convcli.input_padding"] = str(net.pad)
    if net.normalised:
        props["convcli.normalisation"] = "(x - mean) / std, done by the first nodes of the graph (Sub, Div)"
        props["convcli.mean"], props["convcli.std"] = repr(net.mean), repr(net.std)
    if net.class_names:
        props["convcli.class_names"] = json.dumps(list(net.class_names))
    return props


def _pads(pads: tuple[int, int, int, int], overhang: tuple[int, int] = (0, 0)) -> list[int]:
    """convcli's (top, bottom, left, right) as ONNX's [top, left, bottom, right]."""
    top, bottom, left, right = pads
    return [top, left, bottom + overhang[0], right + overhang[1]]


def _conv(g: _Graph, n: X.Conv, x: str) -> str:
    inputs = [x, g.const(f"{n.path}w", n.w)] + ([g.const(f"{n.path}b", n.b)] if n.b is not None else [])
    f = n.w.shape[2:]
    return g.node(
        "Conv",
        inputs,
        f"{n.path}conv",
        kernel_shape=list(f),
        strides=[n.stride] * 2,
        pads=_pads(n.pads),
        dilations=[n.dilation] * 2,
        group=n.groups,
    )


def _batch_norm(g: _Graph, n: X.BatchNorm, x: str) -> str:
    arrays = [g.const(f"{n.path}{k}", getattr(n, k)) for k in ("gamma", "beta", "mean", "var")]
    return g.node("BatchNormalization", [x, *arrays], f"{n.path}bn", epsilon=n.eps)


def _pool(g: _Graph, n: X.Pool, x: str) -> str:
    window = {"kernel_shape": [n.f] * 2, "strides": [n.stride] * 2}
    if n.kind == "max":
        return g.node("MaxPool", [x], f"{n.path}maxpool", pads=_pads(n.pads, n.overhang), **window)
    pads = _pads(n.pads, n.overhang)
    if n.count_pad and any(n.pads):
        top, bottom, left, right = n.pads
        zeros = g.const(f"{n.path}pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        x = g.node("Pad", [x, zeros], f"{n.path}pad")
        pads = _pads((0, 0, 0, 0), n.overhang)
    return g.node("AveragePool", [x], f"{n.path}avgpool", pads=pads, count_include_pad=0, **window)


def _global_pool(g: _Graph, n: X.GlobalPool, x: str) -> str:
    op = "GlobalMaxPool" if n.kind == "max" else "GlobalAveragePool"
    return g.node(op, [x], f"{n.path}{'gmp' if n.kind == 'max' else 'gap'}")


def _activation(g: _Graph, n: X.Activation, x: str) -> str:
    return _apply(g, n.name, x, n.path)


def _apply(g: _Graph, name: str, x: str, path: str) -> str:
    """Activation ``name`` on tensor ``x``, the nodes named ``path`` + name."""
    out = f"{path}{name}"
    if name == "relu6":
        low, high = g.const(f"{out}.min", np.float32(0)), g.const(f"{out}.max", np.float32(6))
        return g.node("Clip", [x, low, high], out)
    if name == "leakyrelu":
        return g.node("LeakyRelu", [x], out, alpha=X.LEAKY_SLOPE)
    if name == "swish":
        return g.node("Mul", [x, g.node("Sigmoid", [x], f"{out}.sigmoid")], out)
    return g.node(_SIMPLE[name], [x], out)


_SIMPLE = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
ACTIVATIONS = (*_SIMPLE, "relu6", "leakyrelu", "swish")  # every one of X.ACTIVATIONS (a test checks)


def _linear(g: _Graph, n: X.Linear, x: str) -> str:
    if len(n.in_shape) == 3:
        x = g.node("Flatten", [x], f"{n.path}flatten", axis=1)
    inputs = [x, g.const(f"{n.path}w", n.w)] + ([g.const(f"{n.path}b", n.b)] if n.b is not None else [])
    return g.node("Gemm", inputs, f"{n.path}fc", transB=1)


def _residual(g: _Graph, n: X.Residual, x: str) -> str:
    y = g.sequence(n.body, x)
    if n.shortcut is not None:
        y = g.node("Add", [y, g.sequence(n.shortcut, x)], f"{n.path}add")
    return _apply(g, n.act, y, n.path) if n.act else y


def _concat(g: _Graph, n: X.Concat, x: str) -> str:
    return g.node("Concat", [g.sequence(branch, x) for _, branch in n.branches], f"{n.path}concat", axis=1)


_WRITERS: dict[type, Callable[..., str]] = {
    X.Conv: _conv,
    X.BatchNorm: _batch_norm,
    X.Pool: _pool,
    X.GlobalPool: _global_pool,
    X.Activation: _activation,
    X.Dropout: lambda g, n, x: g.node("Identity", [x], f"{n.path}dropout"),
    X.Flatten: lambda g, n, x: g.node("Flatten", [x], f"{n.path}flatten", axis=1),
    X.Linear: _linear,
    X.Residual: _residual,
    X.Concat: _concat,
}
