"""Reading an ONNX model file into a network: the graph's operators as spec layers, its forks and
joins as the spec's containers.

The graph is read in three passes, the first two in `convcli.interop.onnx_graph`:

1. Constants: initialisers, ``Constant`` nodes and the shape arithmetic that exporters write
   (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat`` ... on known shapes) are evaluated; what is
   left are the nodes that carry the image. Weights are read for their shapes only.
2. Rewrites that keep the meaning: a DenseNet block's concatenation of all previous maps
   (``concat(x0, x1, ..., xk)`` after ``concat(x0, ..., xk-1)``) becomes a chain of
   ``concat(previous, xk)``; a channel ``Split`` becomes one slice a part.
3. Structure: from the image on, a chain of nodes is a sequence of layers; where a tensor forks,
   each branch is followed until the node that joins them, and the join says the container:
   ``Add`` a :class:`~convcli.networks.spec.Residual`, ``Concat`` a
   :class:`~convcli.networks.spec.Concat`, ``Mul`` by the branch's sigmoid a
   :class:`~convcli.networks.spec.Scale` (squeeze-and-excitation), or swish when the branch is
   the sigmoid alone. A graph that is not built of such blocks is refused, naming the node.

Operators convcli does not know become :class:`~convcli.networks.spec.Unknown` layers with the
output shape ONNX's shape inference gives them; every report lists them. This module imports onnx
and numpy: only a ``.onnx`` source imports it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from convcli.errors import ShapeError, SpecError
from convcli.interop.onnx_graph import Graph, Op, image_input, import_onnx, load
from convcli.networks import spec as S
from convcli.networks.words import format_layer
from convcli.shapes import pool_axis, resolve_padding

_SIMPLE_ACTS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "LeakyRelu": "leakyrelu",
    "Softmax": "softmax",
    "HardSigmoid": "hardsigmoid",
    "HardSwish": "hardswish",
    "Gelu": "gelu",
}


def read_onnx(path: Path, input_shape: str | None = None) -> S.Network:
    """The network the ONNX file ``path`` holds; ``input_shape`` (``NxCxHxW`` or ``HxWxC``) fills
    or replaces the image input's dimensions."""
    onnx = import_onnx()
    model = load(onnx, path)
    graph = model.graph
    sizes = {t.name: tuple(t.dims) for t in graph.initializer}
    image, batch = image_input(onnx, graph, sizes, input_shape, path)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # an operator shape inference cannot follow: shapes stay unknown past it
        pass
    reader = _Reader(onnx, model.graph, sizes, image)
    steps, network_input = reader.network()
    notes = []
    if reader.input_pad:
        notes.append(f"the graph zero-pads its image by {reader.input_pad}: the network's input is the padded image")
    if reader.folded:
        notes.append(f"batch norm folded into conv: {reader.folded} layers (the exporter made their biases)")
    if batch != 1:
        notes.append(f"the file's batch is {batch} images: every count here is per image")
    return S.Network(network_input, steps, Path(path).stem, str(path), tuple(notes))


class _Reader(Graph):
    """Pass 3 of the module docstring over a graph that passes 1 and 2 have read."""

    def __init__(self, onnx, graph, sizes: dict, image: str) -> None:
        super().__init__(onnx, graph, sizes, image)
        self.folded = 0  # convolutions whose bias the exporter made from a batch norm
        self.input_pad = 0  # a zero Pad in front of the first layer, read as part of the input

    # pass 3 ---------------------------------------------------------------------------------
    def network(self) -> tuple[tuple[S.Step, ...], tuple[int, int, int]]:
        n, c, h, w = self.shapes[self.image]
        start = self.image
        first = self.consumers.get(start, [])
        if len(first) == 1 and first[0].op == "Pad":
            p = self._zero_pads(first[0])
            if p is not None and len(set(p)) == 1:
                self.input_pad, start = p[0], first[0].output
                h, w = h + 2 * p[0], w + 2 * p[0]
        layers, end, stop = self.walk(start)
        if stop is not None:
            raise SpecError(f"{stop.label} joins branches convcli cannot nest into residual, concat or scale blocks")
        if end not in self.outputs:
            raise SpecError(f"the graph's image path ends at '{end}', which is not an output")
        if not layers:
            raise SpecError("the graph has no operator between its image input and its output")
        return tuple(S.Step(layer, format_layer(layer)) for layer in layers), (h, w, c)

    def walk(self, t: str) -> tuple[list, str, Op | None]:
        """The layers from tensor ``t`` on, the tensor they end at, and the join they stop at
        (None at an output)."""
        layers: list = []
        while True:
            users = self.consumers.get(t, [])
            if not users:
                return layers, t, None
            if len(users) == 1:
                op = users[0]
                if len(op.inputs) > 1:
                    return layers, t, op
                t = self.translate(op, layers)
                continue
            layers_, t, stop = self.fork(t, users)
            layers += layers_
            if stop is not None:
                return layers, t, stop

    def fork(self, t: str, users: list[Op]) -> tuple[list, str, Op | None]:
        """The branches that start at ``t``, joined wherever all of a join's inputs are branch
        ends, until one branch is left."""
        open_: list[tuple[list, str, Op | None]] = []
        for op in users:
            if len(op.inputs) > 1:
                open_.append(([], t, op))
            else:
                first: list = []
                nxt = self.translate(op, first)
                more, end, stop = self.walk(nxt)
                open_.append((first + more, end, stop))
        while len(open_) > 1:
            for join in {id(b[2]): b[2] for b in open_ if b[2] is not None}.values():
                ends = [b for b in open_ if b[2] is join]
                if sorted(b[1] for b in ends) == sorted(join.inputs):
                    ends.sort(key=lambda b: join.inputs.index(b[1]))
                    open_ = [b for b in open_ if b[2] is not join]
                    layers: list = []
                    nxt = self.join(join, [b[0] for b in ends], layers)
                    more, end, stop = self.walk(nxt)
                    open_.append((layers + more, end, stop))
                    break
            else:
                stuck = next((b[2] for b in open_ if b[2] is not None), None)
                what = stuck.label if stuck else f"tensor '{t}'"
                raise SpecError(
                    f"{what}: the branches from '{t}' do not meet in one join that convcli can nest "
                    "(residual add, concat, or scaling multiply)"
                )
        return open_[0]

    def join(self, op: Op, branches: list[list], layers: list) -> str:
        """The container ``op`` closes over ``branches``, added to ``layers``; the tensor after it."""
        out = op.output
        if op.op == "Add" and len(branches) == 2:
            body, short = sorted(branches, key=_size, reverse=True)
            act = None
            users = self.consumers.get(out, [])
            if len(users) == 1 and users[0].op == "Relu" and out not in self.outputs:
                act, out = "relu", users[0].output
            layers.append(S.Residual(tuple(body), tuple(short), act))
            return out
        if op.op == "Concat" and self._axis(op) == 1:
            layers.append(S.Concat(tuple(tuple(b) for b in branches)))
            return out
        if op.op == "Mul" and len(branches) == 2 and any(not b for b in branches):
            body = next((b for b in branches if b), [])
            if body == [S.Activation("sigmoid")]:
                layers.append(S.Activation("swish"))
            elif body == [S.Activation("hardsigmoid")]:
                layers.append(S.Activation("hardswish"))
            else:
                layers.append(S.Scale(tuple(body)))
            return out
        raise SpecError(f"{op.label} joins {len(branches)} branches in a way convcli cannot read as a block")

    def _axis(self, op: Op) -> int:
        axis = op.attrs.get("axis", 1)
        rank = len(self.shapes.get(op.output) or (0, 0, 0, 0))
        return axis + rank if axis < 0 else axis

    def translate(self, op: Op, layers: list) -> str:
        """Append the layers of ``op`` (one input) to ``layers``; the tensor after it."""
        kind = op.op
        if kind in ("Identity",):
            return op.output
        if kind == "Pad":
            return self._pad(op, layers)
        if kind in ("Conv", "ConvTranspose"):
            layers.append(self._conv(op))
        elif kind in ("MaxPool", "AveragePool"):
            layers.append(self._pool(op))
        elif kind in ("GlobalAveragePool", "GlobalMaxPool"):
            layers.append(S.GlobalPool("max" if kind == "GlobalMaxPool" else "avg"))
        elif kind == "ReduceMean" and self._spatial_axes(op):
            layers.append(S.GlobalPool("avg"))
            if not op.attrs.get("keepdims", 1):
                layers.append(S.Flatten())
        elif kind == "BatchNormalization":
            layers.append(S.BatchNorm(_float32(op.attrs.get("epsilon", 1e-5))))
        elif kind in _SIMPLE_ACTS:
            layers.append(S.Activation(_SIMPLE_ACTS[kind]))
        elif kind == "Clip":
            layers.append(self._clip(op))
        elif kind == "PRelu":
            slopes = op.consts.get(1)
            layers.append(S.PReLU(shared=_count(slopes) == 1))
        elif kind == "Dropout":
            rate = op.attrs.get("ratio", op.consts.get(1, 0.5))
            layers.append(S.Dropout(_float32(np.asarray(rate).reshape(-1)[0])))
        elif kind == "Flatten" or kind == "Squeeze" and self._flat(op.output):
            layers.append(S.Flatten())
        elif kind == "Reshape":
            return self._reshape(op, layers)
        elif kind in ("Gemm", "MatMul"):
            layers.append(self._linear(op))
        elif kind in ("Add", "Sub", "Mul", "Div"):
            self._constant_arithmetic(op, layers)
        elif kind in ("Split", "Slice") and (kept := self._channel_slice(op)) is not None:
            layers.append(S.ChannelSlice(*kept))
        else:
            layers.append(S.Unknown(_op_name(kind), self._shape_text(op.output)))
        return op.output

    # one operator each ------------------------------------------------------------------------
    def _weight(self, op: Op, i: int = 1) -> tuple:
        w = op.consts.get(i)
        if w is None:
            raise SpecError(f"{op.label}: input {i + 1} (the weights) is not a constant of the file")
        return tuple(w) if isinstance(w, tuple) else w.shape

    def _conv(self, op: Op, extra: tuple = (0, 0, 0, 0), x: tuple | None = None) -> S.Layer:
        shape = self._weight(op)
        if len(shape) != 4:
            raise SpecError(f"{op.label}: a {len(shape) - 2}-D convolution; convcli reads 2-D ones")
        kh, kw = op.attrs.get("kernel_shape", shape[2:])
        if kh != kw:
            raise SpecError(f"{op.label}: kernel {kh}x{kw} is not square; convcli's layers have f x f kernels")
        s = _square(op, "strides", 1)
        d = _square(op, "dilations", 1)
        g = int(op.attrs.get("group", 1))
        bias = 2 in op.consts
        x = x or self.shapes.get(op.inputs[0])
        if op.op == "ConvTranspose":
            pads = op.attrs.get("pads", [0, 0, 0, 0])
            if len(set(pads)) != 1 or op.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
                raise SpecError(f"{op.label}: pads {list(pads)} are not one padding on every side")
            o = op.attrs.get("output_padding", [0, 0])
            if o[0] != o[1]:
                raise SpecError(f"{op.label}: output_padding {list(o)} differs between height and width")
            return S.ConvT(shape[1] * g, kh, s, int(pads[0]), int(o[0]), d, g, bias)
        if bias and self._exporter_made(op, 2):
            self.folded += 1
        p = self._padding(op, x, kh, s, d, extra)
        c_in = shape[1] * g
        if g > 1 and g == c_in:
            return S.DWConv(kh, s, p, d, shape[0] // g, bias)
        return S.Conv(shape[0], kh, s, p, d, g, bias)

    def _exporter_made(self, op: Op, i: int) -> bool:
        """Whether input ``i`` of ``op`` is a tensor the exporter made (PyTorch names those
        ``onnx::...``), not a parameter the model held: a folded batch norm's bias."""
        name = op.attrs["_inputs"][i]
        return self.init_names.get(name, name).startswith("onnx::")

    def _padding(self, op: Op, x: tuple | None, f: int, s: int, d: int, extra: tuple) -> int | str:
        auto = op.attrs.get("auto_pad", "NOTSET")
        if isinstance(auto, bytes):
            auto = auto.decode()
        if auto == "VALID" and not any(extra):
            return 0
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            if not any(extra) and auto == "SAME_UPPER":
                return "tf"
            pads = self._same(op, x, f, s, d, auto == "SAME_LOWER")
        else:
            pads = list(op.attrs.get("pads", [0, 0, 0, 0]))
        top, left, bottom, right = (a + b for a, b in zip(pads, extra))
        if top == left == bottom == right:
            return int(top)
        if x is not None and None not in x[2:]:
            if resolve_padding("tf", x[2], f, s, d) == (top, bottom) and resolve_padding("tf", x[3], f, s, d) == (
                left,
                right,
            ):
                return "tf"
        raise SpecError(
            f"{op.label}: pads {[top, left, bottom, right]} (top, left, bottom, right) are neither one padding "
            "on every side nor TensorFlow's SAME"
        )

    def _same(self, op: Op, x: tuple | None, f: int, s: int, d: int, lower: bool) -> list[int]:
        if x is None or None in x[2:]:
            raise SpecError(
                f"{op.label}: auto_pad SAME_LOWER needs the input's size, which shape inference did not give"
            )
        (t, b), (lft, r) = resolve_padding("tf", x[2], f, s, d), resolve_padding("tf", x[3], f, s, d)
        return [b, r, t, lft] if lower else [t, lft, b, r]

    def _pool(self, op: Op, extra: tuple = (0, 0, 0, 0), x: tuple | None = None) -> S.Layer:
        kh, kw = op.attrs["kernel_shape"]
        if kh != kw:
            raise SpecError(f"{op.label}: window {kh}x{kw} is not square; convcli's pooling has f x f windows")
        s = _square(op, "strides", 1)
        if _square(op, "dilations", 1) != 1:
            raise SpecError(f"{op.label}: dilated pooling is not a convcli layer")
        kind = "max" if op.op == "MaxPool" else "avg"
        ceil = bool(op.attrs.get("ceil_mode", 0))
        count_pad = bool(op.attrs.get("count_include_pad", 0)) or any(extra)
        x = x or self.shapes.get(op.inputs[0])
        try:
            p = self._padding(op, x, kh, s, 1, extra)
        except SpecError:
            p, ceil = self._ceil_overhang(op, x, kh, s, extra)
        mixed = any(extra) and not op.attrs.get("count_include_pad", 0) and any(op.attrs.get("pads", ()))
        if kind == "avg" and mixed and not ceil:
            raise SpecError(f"{op.label}: zero padding in front of an average that leaves out its own padding")
        return S.Pool(kind, kh, None if s == kh else s, p, ceil, count_pad if kind == "avg" else True)

    def _ceil_overhang(self, op: Op, x: tuple | None, f: int, s: int, extra: tuple) -> tuple[int, bool]:
        """Padding ``p`` on every side plus more below and right that only ceil mode's last
        windows reach (how convcli's own export writes ceil mode) reads as ``p`` in ceil mode."""
        top, left, bottom, right = (a + b for a, b in zip(op.attrs.get("pads", [0, 0, 0, 0]), extra))
        if top == left and bottom == right and bottom > top and x is not None and None not in x[2:]:
            try:
                same = all(
                    pool_axis(n, f, s, top, ceil=True).out == pool_axis(n, f, s, (top, bottom)).out for n in x[2:]
                )
            except ShapeError:
                same = False
            if same:
                return top, True
        raise SpecError(
            f"{op.label}: pads {[top, left, bottom, right]} (top, left, bottom, right) are neither one padding "
            "on every side nor the overhang of ceil mode"
        )

    def _zero_pads(self, op: Op) -> list[int] | None:
        """(top, left, bottom, right) of a zero ``Pad`` of the spatial axes only, else None."""
        pads = op.attrs.get("pads", op.consts.get(1))
        mode = op.attrs.get("mode", b"constant")
        value = op.consts.get(2, op.attrs.get("value", 0.0))
        if pads is None or mode not in (b"constant", "constant") or np.any(np.asarray(value) != 0):
            return None
        pads = [int(v) for v in np.asarray(pads).reshape(-1)]
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            return None
        return [pads[2], pads[3], pads[6], pads[7]]

    def _pad(self, op: Op, layers: list) -> str:
        pads = self._zero_pads(op)
        users = self.consumers.get(op.output, [])
        if pads is not None and len(users) == 1 and op.output not in self.outputs:
            nxt = users[0]
            extra = (pads[0], pads[1], pads[2], pads[3])
            x = self.shapes.get(op.inputs[0])
            plain = nxt.attrs.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET")
            if nxt.op in ("MaxPool", "AveragePool") and plain:
                if nxt.op == "AveragePool" or not any(nxt.attrs.get("pads", ())):
                    layers.append(self._pool(nxt, extra, x))
                    return nxt.output
            if nxt.op == "Conv" and plain:
                layers.append(self._conv(nxt, extra, x))
                return nxt.output
        layers.append(S.Unknown("Pad", self._shape_text(op.output)))
        return op.output

    def _clip(self, op: Op) -> S.Layer:
        low = op.attrs.get("min", op.consts.get(1))
        high = op.attrs.get("max", op.consts.get(2))
        low = None if low is None else float(np.asarray(low).reshape(-1)[0])
        high = None if high is None else float(np.asarray(high).reshape(-1)[0])
        if low == 0 and high == 6:
            return S.Activation("relu6")
        if low == 0 and (high is None or high == float("inf")):
            return S.Activation("relu")
        return S.Unknown("Clip", self._shape_text(op.output))

    def _linear(self, op: Op) -> S.Layer:
        w = self._weight(op)
        if len(w) != 2 or op.attrs.get("transA", 0):
            raise SpecError(f"{op.label}: weights of shape {list(w)}; convcli reads x @ W with a 2-D W")
        units = w[0] if op.op == "Gemm" and op.attrs.get("transB", 0) else w[1]
        return S.FC(int(units), bias=op.op == "Gemm" and 2 in op.consts)

    def _reshape(self, op: Op, layers: list) -> str:
        target = op.consts.get(1)
        if target is not None and len(target) == 5:
            shuffled = self._shuffle(op, target)
            if shuffled is not None:
                layers.append(S.Shuffle(int(target[1])))
                return shuffled
        if self._flat(op.output):
            layers.append(S.Flatten())
        else:
            layers.append(S.Unknown("Reshape", self._shape_text(op.output)))
        return op.output

    def _shuffle(self, op: Op, target) -> str | None:
        """ShuffleNet's channel shuffle: reshape to N x g x C/g x H x W, swap axes 1 and 2, reshape back."""
        users = self.consumers.get(op.output, [])
        if len(users) != 1 or users[0].op != "Transpose" or list(users[0].attrs.get("perm", ())) != [0, 2, 1, 3, 4]:
            return None
        after = self.consumers.get(users[0].output, [])
        if len(after) != 1 or after[0].op != "Reshape" or len(self.shapes.get(after[0].output) or ()) != 4:
            return None
        return after[0].output

    def _constant_arithmetic(self, op: Op, layers: list) -> None:
        """``x + b`` after a layer without bias is its bias; arithmetic by one number (an image's
        normalisation) is no layer; anything else is an unknown operator."""
        value = next(iter(op.consts.values()), None)
        n = _count(value)
        last = layers[-1] if layers else None
        if op.op == "Add" and isinstance(last, (S.FC, S.Conv)) and not last.bias and n > 1:
            layers[-1] = replace(last, bias=True)
        elif n != 1:
            layers.append(S.Unknown(f"{op.op}", self._shape_text(op.output)))

    def _channel_slice(self, op: Op) -> tuple[int, int] | None:
        """Channels ``(start, stop)`` a Slice of axis 1 (or one part of a Split) keeps, else None."""
        if op.op == "Split":
            return op.attrs["start"], op.attrs["stop"]
        starts, ends = op.attrs.get("starts", op.consts.get(1)), op.attrs.get("ends", op.consts.get(2))
        axes = op.attrs.get("axes", op.consts.get(3, None))
        shape = self.shapes.get(op.inputs[0])
        if starts is None or ends is None or shape is None or shape[1] is None or axes is None:
            return None
        if [int(a) for a in np.asarray(axes).reshape(-1)] != [1]:
            return None
        c = shape[1]
        lo, hi = int(np.asarray(starts).reshape(-1)[0]), int(np.asarray(ends).reshape(-1)[0])
        lo, hi = (lo + c if lo < 0 else lo), min(hi + c if hi < 0 else hi, c)
        return (lo, hi) if 0 <= lo < hi else None

    def _spatial_axes(self, op: Op) -> bool:
        axes = op.attrs.get("axes", op.consts.get(1))
        return axes is not None and sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) == [2, 3]

    def _flat(self, name: str) -> bool:
        shape = self.shapes.get(name)
        return shape is not None and len(shape) == 2

    def _shape_text(self, name: str) -> str:
        """The inferred shape of ``name`` as an Unknown layer's ``shape`` (empty when unknown)."""
        shape = self.shapes.get(name)
        if shape is None or None in shape[1:] or len(shape) not in (2, 4) or min(shape[1:]) < 1:
            return ""
        if len(shape) == 2:
            return str(shape[1])
        _, c, h, w = shape
        return f"{h}x{w}x{c}"


def _square(op: Op, key: str, default: int) -> int:
    values = list(op.attrs.get(key, [default, default]))
    if len(set(values)) != 1:
        raise SpecError(f"{op.label}: {key} {values} differ between height and width")
    return int(values[0])


def _float32(value) -> float:
    """A float32 attribute as the number it was written as (1e-05, not 9.99999974e-06)."""
    return float(str(np.float32(value)))


def _count(value) -> int:
    if value is None:
        return 0
    return int(np.prod(value)) if isinstance(value, tuple) else int(np.asarray(value).size)


def _op_name(kind: str) -> str:
    return kind if kind.replace("_", "").replace(".", "").isalnum() and kind[:1].isalpha() else "custom"


def _size(layers: list) -> int:
    """How many layers a branch holds, containers counted by their contents."""
    return sum(1 + sum(_size(list(inner)) for inner in S.inner_sequences(layer)) for layer in layers)
