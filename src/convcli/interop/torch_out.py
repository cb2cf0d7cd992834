"""An exported network as the source of a self-contained PyTorch module, ``class Net(nn.Module)``.

The file defines one attribute per layer and writes the forward pass out, with the shape after
each step in a comment; blocks appear as their body, shortcut and branches. The weights are not
copied into it: ``Net.from_checkpoint()`` reads them with numpy from the convcli checkpoint the
file was exported from (or any checkpoint of the same network), together with the normalisation
the checkpoint records, so exporting needs no torch and the weights exist in one file only.

Padding PyTorch's layers take evenly is passed to them; uneven padding (``p=same`` with an even
window, TensorFlow's ``p=tf``) is an explicit ``F.pad`` in the forward pass, zeros for a
convolution and -inf for max pooling, as convcli pads.
"""

from __future__ import annotations

import re

from convcli import __version__
from convcli.errors import SpecError
from convcli.interop import layers as X

MODULES = {
    "relu": "nn.ReLU()",
    "relu6": "nn.ReLU6()",
    "leakyrelu": f"nn.LeakyReLU({X.LEAKY_SLOPE!r})",
    "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()",
    "swish": "nn.SiLU()",
}
ACTIVATIONS = tuple(MODULES)  # every one of X.ACTIVATIONS (a test checks)
STATE_NAMES = {
    "w": "weight",
    "b": "bias",
    "gamma": "weight",
    "beta": "bias",
    "mean": "running_mean",
    "var": "running_var",
}


def torch_source(
    net: X.Exported, checkpoint: str | None, module: str, remedy: str = "export it to .onnx instead"
) -> str:
    """The module file for ``net``: ``checkpoint`` is the path of its weights relative to the
    file (None for a spec), ``module`` the name it is imported by.

    Raises `SpecError` for a layer PyTorch's modules cannot compute as convcli does (average
    pooling with uneven padding that does not count, or with ceil mode's overhang), ending in
    ``remedy`` (what the caller offers instead).
    """
    w = _Writer(remedy)
    body = w.forward(net.layers, "x", "x")
    c, h, wd = net.network.input[2], *net.network.input[:2]
    return _TEMPLATE.format(
        doc=_docstring(net, checkpoint, module),
        version=__version__,
        checkpoint=repr(checkpoint),
        input=(c, h, wd),
        mean=repr(net.mean),
        std=repr(net.std),
        pad=net.pad,
        classes=repr(tuple(net.class_names)),
        names="".join(f'    "{k}": "{v}",\n' for k, v in w.names.items()),
        layers="".join(f"        self.{name} = {expr}  # {word}\n" for name, expr, word in w.modules),
        prepare_shape=_shape((h, wd, c)),
        forward="".join(f"        {line}\n" for line in body),
    )


def _docstring(net: X.Exported, checkpoint: str | None, module: str) -> str:
    c, h, w = net.image
    classes = f" (classes {', '.join(net.class_names)})" if net.class_names else ""
    where = (
        f"by default {checkpoint} (beside this file), the checkpoint it was exported from,"
        if checkpoint
        else "given by its path (this file was exported from a spec),"
    )
    title = (
        f"{net.network.name or 'A network'} as a PyTorch module, written by convcli {__version__} ('convcli export')."
    )
    return f'''"""{title}

Network: {net.words}
Weights: {net.weights}
Input:   image, N x {c} x {h} x {w} float32; forward() first prepares it: {net.preparation}.
Output:  logits, N x {net.n_outputs}{classes}; softmax(dim=1) gives probabilities.

The weights are not in this file: Net.from_checkpoint() reads them with numpy from a convcli
checkpoint (.npz) of this network, {where}
together with the normalisation it was trained with. Net() alone has PyTorch's initial weights.
Needs torch and numpy.

    python {module}.py [CHECKPOINT.npz]   # the layers, the parameter count, the output shape
    from {module} import Net
    net = Net.from_checkpoint()            # or Net.from_checkpoint("other.npz"); in eval mode
    probabilities = net(images).softmax(dim=1)
"""'''


class _Writer:
    """Collects ``(attribute, constructor, word)`` per layer and the checkpoint-name table while
    the forward pass is written."""

    def __init__(self, remedy: str) -> None:
        self.modules: list[tuple[str, str, str]] = []
        self.names: dict[str, str] = {}
        self.remedy = remedy

    def add(self, node: X.Node, kind: str, expr: str, arrays: tuple[str, ...] = ()) -> str:
        name = f"{kind}_{node.path.rstrip('.').replace('.', '_')}"
        self.modules.append((name, expr, node.word))
        for key in arrays:
            self.names[f"{node.path}{key}"] = f"{name}.{STATE_NAMES[key]}"
        return name

    def forward(self, nodes: tuple[X.Node, ...], src: str, var: str) -> list[str]:
        """Lines that run ``nodes`` on ``src`` and leave the result in ``var``."""
        lines = []
        for node in nodes:
            lines += self.node(node, src, var)
            src = var
        if src != var:  # an empty sequence
            lines.append(f"{var} = {src}")
        return lines

    def node(self, n: X.Node, src: str, var: str) -> list[str]:
        if isinstance(n, X.Residual):
            return self.residual(n, src, var)
        if isinstance(n, X.Concat):
            outs, lines = [], [f"# {n.word}: concatenated along channels"]
            for name, branch in n.branches:
                out = _var(n.path, name) if branch else src
                lines += self.forward(branch, src, out)
                outs.append(out)
            return lines + [f"{var} = torch.cat([{', '.join(outs)}], dim=1)  # {_shape(n.out_shape)}"]
        attr, pad = self.layer(n)
        arg = f"nn.functional.pad({src}, {pad})" if pad else src
        if isinstance(n, X.Linear) and len(n.in_shape) == 3:
            arg = f"torch.flatten({arg}, 1)"
        return [f"{var} = self.{attr}({arg})  # {_shape(n.out_shape)}"]

    def residual(self, n: X.Residual, src: str, var: str) -> list[str]:
        if n.shortcut is None:  # no skip: the block is its body
            lines = [f"# {n.word}"] + self.forward(n.body, src, var)
            total = var
        else:
            body, short = _var(n.path, "body"), _var(n.path, "shortcut") if n.shortcut else src
            lines = [f"# {n.word}: {n.act or ''}(body + {'shortcut' if n.shortcut else 'input'})"]
            lines += self.forward(n.body, src, body) + self.forward(n.shortcut, src, short)
            total = f"{body} + {short}"
        if n.act:
            total = f"self.{self.add(n, n.act, MODULES[n.act])}({total})"
        return lines + ([f"{var} = {total}  # {_shape(n.out_shape)}"] if total != var else [])

    def layer(self, n: X.Node) -> tuple[str, str | None]:
        """The attribute for a layer, and the padding ``F.pad`` applies in front of it, if any."""
        kind = re.sub(r"[^a-z0-9]", "", n.word.split(":")[0].lower()) or "layer"
        maps = len(n.in_shape) == 3
        if isinstance(n, X.Conv):
            c_out, _, f, _ = n.w.shape
            even, pad = _even(n.pads, "0.0")
            args = [str(n.in_shape[-1]), str(c_out), str(f)] + _options(
                stride=(n.stride, 1), padding=(even, (0, 0)), dilation=(n.dilation, 1), groups=(n.groups, 1)
            )
            args += [] if n.b is not None else ["bias=False"]
            return self.add(n, kind, f"nn.Conv2d({', '.join(args)})", ("w", "b") if n.b is not None else ("w",)), pad
        if isinstance(n, X.BatchNorm):
            options = _options(eps=(n.eps, 1e-5))
            expr = f"nn.BatchNorm{'2' if maps else '1'}d({', '.join([str(n.in_shape[-1])] + options)})"
            return self.add(n, kind, expr, ("gamma", "beta", "mean", "var")), None
        if isinstance(n, X.Linear):
            units, n_in = n.w.shape
            bias = [] if n.b is not None else ["bias=False"]
            expr = f"nn.Linear({', '.join([str(n_in), str(units)] + bias)})"
            return self.add(n, kind, expr, ("w", "b") if n.b is not None else ("w",)), None
        if isinstance(n, X.Pool):
            return self.pool(n, kind)
        if isinstance(n, X.GlobalPool):
            return self.add(n, kind, f"nn.Adaptive{'Max' if n.kind == 'max' else 'Avg'}Pool2d(1)"), None
        if isinstance(n, X.Activation):
            return self.add(n, kind, MODULES[n.name]), None
        if isinstance(n, X.Dropout):
            return self.add(n, kind, f"nn.Dropout({n.rate!r})"), None
        return self.add(n, kind, "nn.Flatten()"), None

    def pool(self, n: X.Pool, kind: str) -> tuple[str, str | None]:
        even, pad = _even(n.pads, "float('-inf')" if n.kind == "max" else "0.0")
        ceil, count_pad = n.ceil, n.count_pad
        if pad is not None:
            # the padding comes first: the pooling then runs on windows that all fit (floor mode)
            if n.kind == "max":
                pad = _pad_arg(n.pads, n.overhang, "float('-inf')")
            elif n.overhang != (0, 0) or not count_pad:
                raise SpecError(
                    f"layer '{n.word}': average pooling with uneven padding "
                    f"{'that does not count' if not count_pad else 'and ceil mode'} has no PyTorch module "
                    f"that computes it as convcli does; {self.remedy}"
                )
            ceil, count_pad = False, True
        options = _options(
            stride=(n.stride, n.f), padding=(even, (0, 0)), ceil_mode=(ceil, False), count_include_pad=(count_pad, True)
        )
        if n.kind == "max":
            options = [o for o in options if not o.startswith("count_include_pad")]
        return self.add(
            n, kind, f"nn.{'Max' if n.kind == 'max' else 'Avg'}Pool2d({', '.join([str(n.f)] + options)})"
        ), pad


def _even(pads: tuple[int, int, int, int], value: str) -> tuple[tuple[int, int], str | None]:
    """Even padding ``(ph, pw)`` for the layer itself, or (0, 0) and the ``F.pad`` arguments."""
    top, bottom, left, right = pads
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), _pad_arg(pads, (0, 0), value)


def _pad_arg(pads: tuple[int, int, int, int], overhang: tuple[int, int], value: str) -> str:
    top, bottom, left, right = pads
    sides = (left, right + overhang[1], top, bottom + overhang[0])  # F.pad: last axis first
    return f"{sides}" + (f", value={value}" if value != "0.0" else "")


def _options(**given: tuple[object, object]) -> list[str]:
    """``name=value`` for each option whose value is not its default; pairs of one value as one."""
    out = []
    for name, (value, default) in given.items():
        if isinstance(value, tuple) and len(set(value)) == 1:
            value = value[0]
            default = default[0] if isinstance(default, tuple) else default
        if value != default:
            out.append(f"{name}={value!r}")
    return out


def _var(path: str, part: str) -> str:
    return f"x_{path.rstrip('.').replace('.', '_')}_{part}"


def _shape(shape: tuple) -> str:
    """An (H, W, C) or (F,) shape as the NCHW comment of a forward line.

    >>> _shape((28, 28, 16)), _shape((10,))
    ('N, 16, 28, 28', 'N, 10')
    """
    if len(shape) == 3:
        h, w, c = shape
        return f"N, {c}, {h}, {w}"
    return f"N, {shape[0]}"


_TEMPLATE = '''{doc}

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT = {checkpoint}  # the weights, relative to this file
INPUT = {input}  # the network's input, C x H x W
MEAN, STD, PAD = {mean}, {std}, {pad}  # the preparation of the checkpoint exported
CLASSES = {classes}

# convcli's parameter names -> this module's state dict
NAMES = {{
{names}}}


class Net(nn.Module):
    """The network, written out by convcli {version}: one attribute per layer."""

    def __init__(self, mean: float | None = MEAN, std: float | None = STD, pad: int = PAD) -> None:
        super().__init__()
        self.mean, self.std, self.pad = mean, std, pad
{layers}
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = nn.functional.pad(x, (self.pad,) * 4)  # {prepare_shape}
        if self.mean is not None:
            x = (x - self.mean) / self.std
{forward}        return x

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None) -> Net:
        """The network with the weights and the normalisation of a convcli checkpoint, in eval mode."""
        if path is None:
            if CHECKPOINT is None:
                raise ValueError("exported from a spec: give the path of a checkpoint of this network")
            path = Path(__file__).parent / CHECKPOINT
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            params = {{k[len("param/") :]: z[k] for k in z.files if k.startswith("param/")}}
        if set(params) != set(NAMES):
            raise ValueError(f"{{path}} is not a checkpoint of this network: it holds {{meta['spec_words']}}")
        data = meta["data"]
        net = cls(mean=data["mean"], std=data["std"], pad=(INPUT[1] - data["image_shape"][1]) // 2)
        # strict=False: convcli keeps no num_batches_tracked; every other entry is set (same names)
        net.load_state_dict({{NAMES[k]: torch.from_numpy(v) for k, v in params.items()}}, strict=False)
        return net.eval()


if __name__ == "__main__":
    given = sys.argv[1] if len(sys.argv) > 1 else None
    net = Net.from_checkpoint(given) if given or CHECKPOINT else Net().eval()
    print(net)
    print(f"{{sum(p.numel() for p in net.parameters()):,}} parameters")
    c, h, w = INPUT[0], INPUT[1] - 2 * net.pad, INPUT[2] - 2 * net.pad
    with torch.no_grad():
        logits = net(torch.zeros(1, c, h, w))
    print(f"image 1 x {{c}} x {{h}} x {{w}} -> logits {{tuple(logits.shape)}}")
'''
