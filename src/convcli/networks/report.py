"""Walking a network spec: each layer's output shape, receptive field, parameters and MACs.

:func:`analyse` is the one place that derives shapes from a :class:`~convcli.networks.spec.Network`;
shape-calc, params, flops and the model builder of ``train`` all read its :class:`Report`.
Shapes are ``(H, W, C)`` for feature maps and ``(N,)`` once flattened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from math import prod
from typing import NamedTuple

from convcli.errors import ShapeError, SpecError
from convcli.networks import costs
from convcli.networks import spec as S
from convcli.networks.blocks import expand
from convcli.networks.costs import Counting, Totals
from convcli.networks.words import format_layer, kind_name
from convcli.shapes import conv_axis, conv_transpose_axis, effective_kernel, pool_axis

Shape = tuple


class Field(NamedTuple):
    """Receptive field along the height axis (Araujo et al., Distill 2019): size ``r``, jump ``j``
    (distance in input pixels between neighbouring outputs) and ``start`` (centre of the first
    output's field, in input pixel coordinates with pixel centres at 0.5, 1.5, ...)."""

    r: int
    j: int
    start: float

    def through(self, f_eff: int, s: int, p_lo: int) -> Field:
        return Field(self.r + (f_eff - 1) * self.j, self.j * s, self.start + ((f_eff - 1) / 2 - p_lo) * self.j)


class LayerInfo(NamedTuple):
    """What one layer does to its input. ``params`` are trained, ``frozen`` are fixed weights
    (LeNet-5's RBF centres), ``buffers`` are batch norm running statistics (counted only as Keras
    does). ``extra`` holds the non-MAC operations by kind (see ``costs.EXTRA_KINDS``)."""

    word: str
    kind: str
    layer: S.Layer
    in_shape: Shape
    out_shape: Shape
    params: int = 0
    frozen: int = 0
    buffers: int = 0
    macs: int = 0
    extra: dict = {}
    field: Field | None = None
    warnings: tuple[str, ...] = ()
    children: tuple[tuple[str, tuple[LayerInfo, ...]], ...] = ()

    @property
    def activations(self) -> int:
        return prod(self.out_shape)


class Report(NamedTuple):
    """Every layer of ``network`` analysed, and the conventions its counts follow: the one result
    that the tables and the JSON of shape-calc, params and flops are both made from."""

    network: S.Network
    layers: tuple[LayerInfo, ...]
    counting: Counting = Counting()

    @property
    def input_shape(self) -> Shape:
        return self.network.input

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape

    def total(self, attr: str) -> int:
        return sum(getattr(info, attr) for info in self.layers)

    def params(self, info: LayerInfo) -> int:
        """All parameters of one layer as :attr:`counting` counts them."""
        return info.params + self.non_trainable(info)

    def non_trainable(self, info: LayerInfo) -> int:
        return self.counting.non_trainable(info.frozen, info.buffers)

    def flops(self, info: LayerInfo) -> int:
        return self.counting.flops(info.macs, info.extra)

    @property
    def totals(self) -> Totals:
        trainable = self.total("params")
        fixed = self.counting.non_trainable(self.total("frozen"), self.total("buffers"))
        return Totals(
            params=trainable + fixed,
            trainable_params=trainable,
            non_trainable_params=fixed,
            macs=self.total("macs"),
            flops=sum(self.flops(info) for info in self.layers),
            activations=self.total("activations"),
        )

    @property
    def flatten_size(self) -> int | None:
        """The length of the first ``flatten`` output (what the first fc layer takes), if any."""
        return next((info.out_shape[0] for info in self.layers if info.kind == "flatten"), None)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for info in walk(self.layers) for w in info.warnings)

    @property
    def unknown_operators(self) -> dict[str, int]:
        """Operators of a model file that convcli does not know, with how often each occurs."""
        return S.unknown_operators(self.network.layers)


def walk(infos: tuple[LayerInfo, ...]):
    """Every layer, blocks before their inner layers, depth first."""
    for info in infos:
        yield info
        for _, branch in info.children:
            yield from walk(branch)


def analyse(network: S.Network, counting: Counting = Counting()) -> Report:
    """Shapes, receptive fields and costs of every layer of ``network``, counted as ``counting``
    says (``Counting(bias=False)``: every convolution and fully connected layer without its bias).

    >>> from convcli.networks.words import parse_words
    >>> r = analyse(parse_words("39x39x3 conv:10,f=3 conv:20,f=5,s=2 conv:40,f=5,s=2 flatten".split()))
    >>> [info.out_shape for info in r.layers]
    [(37, 37, 10), (17, 17, 20), (7, 7, 40), (1960,)]
    """
    infos = []
    shape: Shape = network.input
    fld: Field | None = Field(1, 1, 0.5)
    for i, step in enumerate(network.steps, 1):
        try:
            info = _layer(step.layer, step.word, shape, fld, counting.bias)
        except (ShapeError, SpecError) as err:
            raise type(err)(f"layer {i} '{step.word}' on input {_fmt(shape)}: {err}") from None
        if not info.out_shape or min(info.out_shape) < 1:
            raise ShapeError(f"layer {i} '{step.word}': output shape {_fmt(info.out_shape)} is empty")
        infos.append(info)
        shape, fld = info.out_shape, info.field
    return Report(network, tuple(infos), counting)


def _layer(layer: S.Layer, word: str, shape: Shape, fld: Field | None, bias: bool) -> LayerInfo:
    kind = kind_name(layer)
    if isinstance(layer, S.BLOCKS):
        inner = _layer(expand(layer, _channels(shape, kind)), word, shape, fld, bias)
        return inner._replace(kind=kind)
    if not bias and isinstance(layer, (S.Conv, S.DWConv, S.ConvT, S.FC)) and layer.bias:
        layer = replace(layer, bias=False)
    if isinstance(layer, S.CONTAINERS):
        return _HANDLERS[type(layer)](layer, word, kind, shape, fld, bias)
    return _HANDLERS[type(layer)](layer, word, kind, shape, fld)


def _fmt(shape: Shape) -> str:
    return "x".join(map(str, shape))


def _spatial(shape: Shape, kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"'{kind}' needs a feature map H x W x C, but its input is flat ({shape[0]} values)")
    return shape


def _channels(shape: Shape, kind: str) -> int:
    return _spatial(shape, kind)[2]


def _dropped(axes, f: int, s: int) -> tuple[str, ...]:
    """A note for each axis where ``(n + p_lo + p_hi - f) mod s`` trailing positions get no window."""
    notes = []
    for name, (n, ax) in zip(("row", "column"), axes):
        if ax.dropped:
            span = n + ax.p_lo + ax.p_hi - f
            notes.append(
                (
                    f"({n} + {ax.p_lo + ax.p_hi} - {f})/{s} + 1 = {span / s + 1:g}, floored to {span // s + 1}",
                    ax.dropped,
                    name,
                )
            )
    if len(notes) == 2 and notes[0][:2] == notes[1][:2]:
        notes = [(notes[0][0], notes[0][1], "row and column")]
    return tuple(
        f"{text}: the last {k} {what}{'s' if k > 1 else ''} of the padded input "
        f"{'are' if k > 1 else 'is'} never covered"
        for text, k, what in notes
    )


def _conv(layer, word, kind, shape, fld):
    h, w, c_in = _spatial(shape, kind)
    if isinstance(layer, S.DWConv):
        g, c_out, bias, connections = c_in, c_in * layer.m, layer.bias, None
    else:
        g, c_out, bias = layer.g, layer.channels, layer.bias
        connections = _table_links(layer, c_in)
    if c_in % g or c_out % g:
        raise SpecError(f"groups g={g} must divide the input channels ({c_in}) and the output channels ({c_out})")
    ah = conv_axis(h, layer.f, layer.s, layer.p, layer.d)
    aw = conv_axis(w, layer.f, layer.s, layer.p, layer.d)
    out = (ah.out, aw.out, c_out)
    f_eff = effective_kernel(layer.f, layer.d)
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        out,
        params=costs.conv_params(c_in, c_out, layer.f, g, bias, connections),
        macs=costs.conv_macs(ah.out, aw.out, c_in, c_out, layer.f, g, connections),
        extra={"bias": prod(out) if bias else 0},
        field=fld.through(f_eff, layer.s, ah.p_lo) if fld else None,
        warnings=_dropped(((h, ah), (w, aw)), f_eff, layer.s),
    )


def _table_links(layer: S.Conv, c_in: int) -> int | None:
    if layer.table is None:
        return None
    if (c_in, layer.channels) != (6, 16) or layer.g != 1:
        raise SpecError(
            f"table={layer.table} connects 6 input maps to 16 (LeNet-5's C3), not {c_in} to {layer.channels}"
        )
    return sum(len(inputs) for inputs in S.LENET5_C3)


def _conv_transpose(layer, word, kind, shape, fld):
    h, w, c_in = _spatial(shape, kind)
    if c_in % layer.g or layer.channels % layer.g:
        raise SpecError(f"groups g={layer.g} must divide the input ({c_in}) and output ({layer.channels}) channels")
    ah = conv_transpose_axis(h, layer.f, layer.s, layer.p, layer.d, layer.op)
    aw = conv_transpose_axis(w, layer.f, layer.s, layer.p, layer.d, layer.op)
    out = (ah.out, aw.out, layer.channels)
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        out,
        params=costs.conv_transpose_params(c_in, layer.channels, layer.f, layer.g, layer.bias),
        macs=costs.conv_transpose_macs(h, w, c_in, layer.channels, layer.f, layer.g),
        extra={"bias": prod(out) if layer.bias else 0},
        field=None,
    )


def _pool(layer, word, kind, shape, fld):
    h, w, c = _spatial(shape, kind)
    s = layer.stride
    ah = pool_axis(h, layer.f, s, layer.p, 1, layer.ceil)
    aw = pool_axis(w, layer.f, s, layer.p, 1, layer.ceil)
    out = (ah.out, aw.out, c)
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        out,
        extra={"pool": costs.pool_ops(prod(out), layer.f, layer.f, layer.kind)},
        field=fld.through(layer.f, s, ah.p_lo) if fld else None,
        warnings=_dropped(((h, ah), (w, aw)), layer.f, s),
    )


def _subsample(layer, word, kind, shape, fld):
    h, w, c = _spatial(shape, kind)
    ah, aw = pool_axis(h, layer.f), pool_axis(w, layer.f)
    out = (ah.out, aw.out, c)
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        out,
        params=2 * c,
        macs=prod(out),
        extra={"pool": costs.pool_ops(prod(out), layer.f, layer.f, "avg"), "bias": prod(out)},
        field=fld.through(layer.f, layer.f, 0) if fld else None,
        warnings=_dropped(((h, ah), (w, aw)), layer.f, layer.f),
    )


def _global_pool(layer, word, kind, shape, fld):
    h, w, c = _spatial(shape, kind)
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        (1, 1, c),
        extra={"pool": costs.pool_ops(c, h, w, layer.kind)},
        field=fld.through(h, 1, 0) if fld else None,
    )


def _adaptive_pool(layer, word, kind, shape, fld):
    h, w, c = _spatial(shape, kind)
    k = layer.size
    out = (k, k, c)
    exact = h % k == 0 and w % k == 0
    f_h, f_w = -(-h // k), -(-w // k)
    notes = (
        ()
        if exact
        else (
            f"input {h}x{w} is not a multiple of {k}: windows of unequal size "
            f"(receptive field not tracked past this layer)",
        )
    )
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        out,
        extra={"pool": costs.pool_ops(prod(out), f_h, f_w, layer.kind) if (h, w) != (k, k) else 0},
        field=fld.through(h // k, h // k, 0) if fld and exact else None,
        warnings=notes,
    )


def _elementwise(layer, word, kind, shape, fld):
    extra = {}
    params = buffers = 0
    if isinstance(layer, S.BatchNorm):
        params, buffers = costs.batchnorm_params(shape[-1])
        extra = {"bn": 2 * prod(shape)}
    elif isinstance(layer, S.Activation):
        extra = {"act": prod(shape)}
    return LayerInfo(word, kind, layer, shape, shape, params=params, buffers=buffers, extra=extra, field=fld)


def _prelu(layer, word, kind, shape, fld):
    return LayerInfo(word, kind, layer, shape, shape, params=1 if layer.shared else shape[-1], field=fld)


def _channel_slice(layer, word, kind, shape, fld):
    c = _channels(shape, kind)
    if not layer.start < layer.stop <= c:
        raise ShapeError(f"channels {layer.start} to {layer.stop} are not a slice of the input's {c}")
    return LayerInfo(word, kind, layer, shape, (*shape[:2], layer.stop - layer.start), field=fld)


def _shuffle(layer, word, kind, shape, fld):
    if _channels(shape, kind) % layer.g:
        raise ShapeError(f"g={layer.g} groups do not divide the {shape[2]} channels")
    return LayerInfo(word, kind, layer, shape, shape, field=fld)


def _unknown(layer, word, kind, shape, fld):
    out = tuple(map(int, layer.shape.split("x"))) if layer.shape else shape
    return LayerInfo(word, kind, layer, shape, out, field=None)


def _flatten(layer, word, kind, shape, fld):
    return LayerInfo(word, kind, layer, shape, (prod(shape),), field=None)


def _flat_inputs(shape: Shape, kind: str) -> int:
    if len(shape) == 3 and shape[:2] != (1, 1):
        raise ShapeError(f"'{kind}' needs a flat input, got {_fmt(shape)}: add 'flatten' (or 'gap') before it")
    return shape[-1]


def _fc(layer, word, kind, shape, fld):
    n = _flat_inputs(shape, kind)
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        (layer.units,),
        params=costs.fc_params(n, layer.units, layer.bias),
        macs=costs.fc_macs(n, layer.units),
        extra={"bias": layer.units if layer.bias else 0},
    )


def _rbf(layer, word, kind, shape, fld):
    n = _flat_inputs(shape, kind)
    return LayerInfo(word, kind, layer, shape, (layer.units,), frozen=n * layer.units, macs=n * layer.units)


def _sequence(layers: tuple, shape: Shape, fld: Field | None, where: str, bias: bool) -> tuple[LayerInfo, ...]:
    infos = []
    for k, layer in enumerate(layers, 1):
        word = format_layer(layer)
        try:
            info = _layer(layer, word, shape, fld, bias)
        except (ShapeError, SpecError) as err:
            raise type(err)(f"{where} layer {k} ({word}): {err}") from None
        infos.append(info)
        shape, fld = info.out_shape, info.field
    return tuple(infos)


def _combine(word, kind, layer, shape, out, branches, extra_add: int, act_extra: int, fld):
    infos = [info for _, branch in branches for info in branch]
    ends = [branch[-1].field for _, branch in branches if branch]
    fields = [f for f in ends if f is not None] if all(f is not None for f in ends) else []
    widest = max(fields, key=lambda f: f.r) if fields else (fld if not ends else None)
    extra = {"add": extra_add, "act": act_extra}
    for info in infos:
        for k, v in info.extra.items():
            extra[k] = extra.get(k, 0) + v
    return LayerInfo(
        word,
        kind,
        layer,
        shape,
        out,
        params=sum(i.params for i in infos),
        frozen=sum(i.frozen for i in infos),
        buffers=sum(i.buffers for i in infos),
        macs=sum(i.macs for i in infos),
        extra=extra,
        field=widest,
        warnings=(),
        children=tuple(branches),
    )


def _residual(layer, word, kind, shape, fld, bias):
    body = _sequence(layer.body, shape, fld, "body", bias)
    out = body[-1].out_shape if body else shape
    branches = [("body", body)]
    if layer.shortcut is not None:
        short = _sequence(layer.shortcut, shape, fld, "shortcut", bias)
        short_out = short[-1].out_shape if short else shape
        if short_out != out:
            raise ShapeError(
                f"the body gives {_fmt(out)} but the shortcut gives {_fmt(short_out)}; they must match to be added"
            )
        branches.append(("shortcut", short))
    add = prod(out) if layer.shortcut is not None else 0
    act = prod(out) if layer.act else 0
    return _combine(word, kind, layer, shape, out, branches, add, act, fld)


def _concat(layer, word, kind, shape, fld, bias):
    branches = [
        (f"branch {b}", _sequence(branch, shape, fld, f"branch {b}", bias))
        for b, branch in enumerate(layer.branches, 1)
    ]
    outs = [branch[-1].out_shape if branch else shape for _, branch in branches]
    if any(len(o) != 3 for o in outs) or len({o[:2] for o in outs}) != 1:
        raise ShapeError(f"branches give {', '.join(_fmt(o) for o in outs)}: concatenation needs the same H x W")
    out = (*outs[0][:2], sum(o[2] for o in outs))
    return _combine(word, kind, layer, shape, out, branches, 0, 0, fld)


def _scale(layer, word, kind, shape, fld, bias):
    body = _sequence(layer.body, shape, fld, "body", bias)
    factors = body[-1].out_shape if body else shape
    if factors != shape and (len(shape) != 3 or factors != (1, 1, shape[2])):
        raise ShapeError(f"the body gives {_fmt(factors)}: scaling {_fmt(shape)} needs that shape or 1x1x{shape[-1]}")
    info = _combine(word, kind, layer, shape, shape, [("body", body)], 0, 0, fld)
    return info._replace(extra={**info.extra, "mul": prod(shape)})


_HANDLERS: dict[type, Callable[..., LayerInfo]] = {
    S.Conv: _conv,
    S.DWConv: _conv,
    S.ConvT: _conv_transpose,
    S.Pool: _pool,
    S.Subsample: _subsample,
    S.GlobalPool: _global_pool,
    S.AdaptivePool: _adaptive_pool,
    S.BatchNorm: _elementwise,
    S.Activation: _elementwise,
    S.Dropout: _elementwise,
    S.PReLU: _prelu,
    S.ChannelSlice: _channel_slice,
    S.Shuffle: _shuffle,
    S.Unknown: _unknown,
    S.Flatten: _flatten,
    S.FC: _fc,
    S.RBF: _rbf,
    S.Residual: _residual,
    S.Concat: _concat,
    S.Scale: _scale,
}
