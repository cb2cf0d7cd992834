"""An ONNX model file read as a graph of the nodes that carry the image, its constants evaluated.

The first two of `convcli.interop.onnx_in`'s passes:

1. Constants: initialisers, ``Constant`` nodes and the shape arithmetic that exporters write
   (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat`` ... on known shapes) are evaluated; what is
   left are the nodes that carry the image. Weights are read for their shapes only.
2. Rewrites that keep the meaning: a DenseNet block's concatenation of all previous maps
   (``concat(x0, x1, ..., xk)`` after ``concat(x0, ..., xk-1)``) becomes a chain of
   ``concat(previous, xk)``; a channel ``Split`` becomes one slice a part.

This module imports onnx and numpy: only a ``.onnx`` source imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convcli.errors import InputError, SpecError
from convcli.networks.words import parse_shape

MIN_OPSET, MAX_OPSET = 7, 23
"""The opsets of the default domain whose operators this reader knows (ONNX's Operators.md)."""

SMALL = 4096  # initialisers up to this many values are read as numbers (shapes, pads, clip bounds)
_FOLDABLE = {"Constant", "Identity", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Reshape", "Slice"}


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise InputError('reading .onnx files needs the onnx package: pip install "convcli[onnx]"') from None
    return onnx


@dataclass
class Op:
    """One node that carries the image: its data inputs, constant inputs (by position) and attributes."""

    name: str
    op: str
    inputs: list[str]
    output: str
    consts: dict[int, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"node '{self.name}' ({self.op})" if self.name else f"a {self.op} node"


def load(onnx, path: Path):
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise InputError(f"ONNX file '{path}' does not exist") from None
    except (DecodeError, ValueError, RuntimeError, TypeError) as err:
        raise InputError(f"'{path}' is not an ONNX model (or is cut short): {str(err).splitlines()[0][:80]}") from None
    except OSError as err:
        raise InputError(f"cannot read '{path}': {err.strerror or err}") from None
    if not model.ir_version or not model.graph.node:
        raise InputError(f"'{path}' is not an ONNX model (or is cut short): it holds no graph")
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not opsets or not MIN_OPSET <= opsets[0] <= MAX_OPSET:
        got = f"opset {opsets[0]}" if opsets else "no opset of the default domain"
        raise InputError(f"'{path}' uses {got}; convcli reads ONNX opsets {MIN_OPSET} to {MAX_OPSET}")
    return model


def image_input(onnx, graph, sizes: dict, input_shape: str | None, path: Path) -> tuple[str, int]:
    """The name of the one N x C x H x W input and its batch size, its dimensions filled in."""
    inputs = [v for v in graph.input if v.name not in sizes]
    images = [v for v in inputs if v.type.HasField("tensor_type") and len(v.type.tensor_type.shape.dim) == 4]
    if len(images) != 1:
        found = ", ".join(f"'{v.name}'" for v in inputs) or "none"
        raise InputError(
            f"'{path}' has {'no' if not images else len(images)} image inputs (N x C x H x W tensors; "
            f"inputs: {found}); convcli reads networks of one image input"
        )
    dims = images[0].type.tensor_type.shape.dim
    given: list[Any] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if input_shape is not None:
        parts = input_shape.lower().split("x")
        if len(parts) == 4 and all(p.isdigit() and int(p) > 0 for p in parts):
            want = [int(p) for p in parts]
        else:
            try:
                h, w, c = parse_shape(input_shape)
            except SpecError:
                raise SpecError(f"--input {input_shape} is not NxCxHxW (e.g. 1x3x224x224) or HxWxC") from None
            want = [given[0] or 1, c, h, w]
        if given[1] is not None and want[1] != given[1]:
            raise SpecError(
                f"--input {input_shape} has {want[1]} channels; the image input '{images[0].name}' takes {given[1]}"
            )
        given = want
    if given[0] is None:
        given[0] = 1
    if None in given[1:]:
        shown = " x ".join("?" if g is None else str(g) for g in given)
        raise SpecError(
            f"the image input '{images[0].name}' has dynamic dimensions ({shown}): give them with --input, "
            "e.g. --input 1x3x224x224 (or 224x224x3)"
        )
    for d, value in zip(dims, given):
        d.Clear()
        d.dim_value = value
    return images[0].name, int(given[0])


class Graph:
    """Passes 1 and 2 of the module docstring over one graph: ``ops`` the nodes that carry the
    image, in order, ``consts`` the values of constant tensors, ``sizes`` the weights' shapes,
    ``shapes`` what shape inference knows, ``consumers`` the nodes each tensor feeds."""

    def __init__(self, onnx, graph, sizes: dict, image: str) -> None:
        from onnx import numpy_helper

        self.numpy_helper = numpy_helper
        self.sizes = sizes
        self.consts: dict[str, Any] = {}
        self.shapes: dict[str, tuple] = {}
        for v in [*graph.input, *graph.value_info, *graph.output]:
            if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
                dims = v.type.tensor_type.shape.dim
                self.shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        self.init_names = {}
        for t in graph.initializer:
            self.init_names[t.name] = t.name
            if int(np.prod(t.dims)) <= SMALL:
                self.consts[t.name] = numpy_helper.to_array(t)
        self.image = image
        self.outputs = [v.name for v in graph.output]
        self.ops: list[Op] = []
        self._constants(graph)
        self._rewrite()
        self.consumers: dict[str, list[Op]] = {}
        for op in self.ops:
            for x in op.inputs:
                self.consumers.setdefault(x, []).append(op)

    # pass 1 ---------------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.consts or name in self.sizes

    def _constants(self, graph) -> None:
        from onnx import helper

        for node in graph.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            ins = list(node.input)
            if node.op_type in _FOLDABLE and all(not x or self.is_const(x) or node.op_type == "Shape" for x in ins):
                value = self._fold(node.op_type, ins, attrs)
                if value is not None:
                    self.consts[node.output[0]] = value
                    continue
                if node.op_type == "Identity" and ins[0] in self.sizes:  # a large weight, renamed
                    self.sizes[node.output[0]] = self.sizes[ins[0]]
                    self.init_names[node.output[0]] = self.init_names[ins[0]]
                    continue
            data = [x for x in ins if x and not self.is_const(x)]
            consts = {i: self.consts.get(x, self.sizes.get(x)) for i, x in enumerate(ins) if x and self.is_const(x)}
            if node.op_type == "Split" and data:
                self._split(node, attrs, consts, data[0])
                continue
            if not data:
                raise SpecError(f"node '{node.name}' ({node.op_type}) has only constant inputs: convcli cannot read it")
            self.ops.append(Op(node.name, node.op_type, data, node.output[0], consts, attrs))
            self.ops[-1].attrs["_inputs"] = ins

    def _fold(self, op: str, ins: list[str], attrs: dict):
        """The value of a node of constants (``Shape``: of a tensor of known shape), else None."""
        v: list[Any] = [self.consts.get(x) for x in ins]
        try:
            if op == "Constant":
                if "value" in attrs:
                    return self.numpy_helper.to_array(attrs["value"])
                for key in ("value_ints", "value_floats", "value_int", "value_float"):
                    if key in attrs:
                        return np.array(attrs[key])
                return None
            if op == "Shape":
                shape = self.shapes.get(ins[0])
                if shape is None or None in shape:
                    return None
                return np.array(shape, np.int64)[attrs.get("start", 0) : attrs.get("end")]
            if any(x is None for x in v[:1]):
                return None
            if op == "Identity" or op == "Cast":
                return v[0] if op == "Identity" else v[0].astype(np.int64 if attrs.get("to") == 7 else np.float32)
            if op == "Gather":
                return np.take(v[0], v[1], axis=attrs.get("axis", 0))
            if op in ("Unsqueeze", "Squeeze"):
                axes = attrs.get("axes", v[1] if len(v) > 1 else None)
                if op == "Squeeze":
                    return np.squeeze(v[0], tuple(axes) if axes is not None else None)
                out = v[0]
                for a in sorted(int(a) for a in axes or ()):
                    out = np.expand_dims(out, a)
                return out
            if op == "Concat":
                return np.concatenate([np.atleast_1d(x) for x in v], axis=attrs.get("axis", 0))
            if op == "Reshape":
                return v[0].reshape([d if d else v[0].shape[i] for i, d in enumerate(v[1])])
            if op == "Slice" and len(v) >= 3:
                axes = v[3] if len(v) > 3 and v[3] is not None else range(len(v[1]))
                index = [slice(None)] * v[0].ndim
                for a, lo, hi in zip(axes, v[1], v[2]):
                    index[int(a)] = slice(int(lo), int(hi))
                return v[0][tuple(index)]
        except (TypeError, ValueError, IndexError):
            return None
        return None

    def _split(self, node, attrs: dict, consts: dict, x: str) -> None:
        c = (self.shapes.get(x) or (None, None))[1]
        axis = attrs.get("axis", 0)
        parts = attrs.get("split", consts.get(1))
        if axis != 1 or c is None:
            raise SpecError(f"node '{node.name}' (Split) splits axis {axis}: convcli reads splits of the channels only")
        parts = [c // len(node.output)] * len(node.output) if parts is None else [int(p) for p in parts]
        start = 0
        for out, n in zip(node.output, parts):
            self.ops.append(Op(node.name, "Split", [x], out, {}, {"start": start, "stop": start + n}))
            start += n

    # pass 2 ---------------------------------------------------------------------------------
    def _rewrite(self) -> None:
        """DenseNet: ``concat(x0..xk)`` as ``concat(concat(x0..xk-1), xk)``; a one-input concat
        as the identity."""
        by_inputs = {tuple(op.inputs): op for op in self.ops if op.op == "Concat" and len(op.inputs) > 1}
        for op in self.ops:
            if op.op != "Concat":
                continue
            for m in range(len(op.inputs) - 1, 1, -1):
                before = by_inputs.get(tuple(op.inputs[:m]))
                if before is not None and before is not op and before.attrs.get("axis") == op.attrs.get("axis"):
                    op.inputs = [before.output, *op.inputs[m:]]
                    break
            if len(op.inputs) == 1:
                op.op = "Identity"
