"""A convcli model as a live PyTorch module, and its weights copied both ways.

The live module *is* the exported one: `build_torch_model` writes the source that
``convcli export -o FILE.py`` writes (`convcli.interop.torch_out`, from the nodes of
`convcli.interop.layers`) and runs it, so training on PyTorch (``convcli train --backend torch``),
the benchmarks' PyTorch reference and the exported file are one translation of a network, not
three. The module takes prepared images (padded and normalised, as `convcli.training.loop.
prepare_images` makes them) and gives logits; convcli's parameter names map to its state dict
through the file's own ``NAMES`` table, kept on the module as ``convcli_names``.

    from convcli.interop.torch_model import build_torch_model
    from convcli.networks.report import analyse
    from convcli.networks.zoo import get

    net = build_torch_model(analyse(get("lenet5")), seed=0)  # the weights 'convcli train' starts from
    net(torch.zeros(2, 1, 32, 32)).shape                     # torch.Size([2, 10])

torch is imported inside the functions (it is an extra, ``convcli[torch]``), so that this module
loads, and its siblings' tests collect, without it.
"""

from __future__ import annotations

import linecache
from typing import TYPE_CHECKING, cast

from convcli.interop import layers as X
from convcli.interop.torch_out import torch_source
from convcli.networks.report import Report
from convcli.networks.words import format_network
from convcli.nn.model import Model, build_model

if TYPE_CHECKING:
    from torch import nn

MODULE = "convcli_torch_model"  # the name the generated source runs under


def build_torch_model(source: Model | Report, seed: int = 0) -> nn.Module:
    """The PyTorch module of a convcli model, with its weights and batch norm statistics, or of a
    report, with the weights ``convcli train --seed SEED`` starts from (He or Glorot, drawn by
    `convcli.nn.model.build_model`). On the CPU, in training mode, float32.

    Raises `convcli.errors.TrainingError` for a layer convcli cannot train and
    `convcli.errors.SpecError` for one PyTorch's modules cannot compute as convcli does.
    """
    model = source if isinstance(source, Model) else build_model(source, seed=seed)
    report = model.report
    X.check_exportable(report)
    h, w, c = report.network.input
    net = X.Exported(
        network=report.network,
        words=format_network(report.network),
        layers=X.export_layers(report, model),
        image=(c, h, w),
        pad=0,
        mean=None,
        std=None,
        class_names=(),
        n_params=model.n_params(),
        softmax_dropped=X.ends_in_softmax(report),
        source="convcli train --backend torch",
        seed=None,
    )
    code = torch_source(net, None, MODULE, remedy="train it with --backend numpy")
    filename = f"<PyTorch module of {net.words}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # tracebacks show the source
    namespace: dict = {"__name__": MODULE}
    exec(compile(code, filename, "exec"), namespace)
    module = namespace["Net"](mean=None, std=None, pad=0)
    module.convcli_names = dict(namespace["NAMES"])
    load_weights(module, model)
    return module.train()


def load_weights(module: nn.Module, model: Model) -> None:
    """Copy ``model``'s parameters and batch norm statistics into ``module`` (on its device)."""
    import torch

    names = convcli_names(module)
    state = {names[k]: torch.from_numpy(v) for k, v in model.state_dict().items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    # convcli keeps no num_batches_tracked (its batch norm always uses momentum 0.1, as torch's)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)


def store_weights(module: nn.Module, model: Model) -> None:
    """Copy ``module``'s parameters and batch norm statistics back into ``model``, whose checkpoint
    then holds what PyTorch trained."""
    state = module.state_dict()
    model.load_state_dict({k: state[name].detach().cpu().numpy() for k, name in convcli_names(module).items()})


def named_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(convcli name, parameter)`` of every trained array, in `Model.parameters` order."""
    params = dict(module.named_parameters())
    return [(k, params[name]) for k, name in convcli_names(module).items() if name in params]


def convcli_names(module: nn.Module) -> dict[str, str]:
    """convcli's parameter and buffer names -> the module's state dict names."""
    return cast(dict[str, str], module.__dict__["convcli_names"])
