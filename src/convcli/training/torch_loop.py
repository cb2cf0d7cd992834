"""Training on PyTorch (``convcli train --backend torch``): `convcli.training.loop.fit`'s contract,
the same model, settings, callbacks and epoch records, computed by the live module of
`convcli.interop.torch_model` on the CPU or a CUDA GPU, in one process or data-parallel over the
processes ``torchrun`` starts.

The convcli model stays the owner of the weights. The PyTorch module starts from them (drawn by
``--seed`` as the numpy backend draws them, or resumed), and after every epoch the weights, the
batch norm statistics and the optimiser state are copied back into the convcli model and
optimiser, so that `convcli.training.run` saves the same checkpoint whichever backend trained:
``evaluate``, ``predict``, ``features``, ``export`` and ``--resume`` (on either backend) read it as
they read any other. The optimiser is PyTorch's SGD or Adam set from the convcli optimiser's own
settings (learning rate, momentum, Nesterov, betas, eps, and weight decay on the weights only, as
`convcli.nn.optim` applies it), the learning rate scheduled per epoch by
`convcli.nn.optim.scheduled_lr`.

Data parallel (`torch.nn.parallel.DistributedDataParallel`, gloo on the CPU, nccl on CUDA): a
`torch.utils.data.DistributedSampler` shuffles each epoch by ``(seed, epoch)`` and hands every
process its share; each takes ``batch_size / processes`` images of a batch, so ``--batch-size``
is the batch over all processes and a recipe means the same on any number of them. DDP averages
the gradients; batch norm normalises with each process's own batch. Dropout is seeded by
``(seed, epoch, rank)``, so the same seed gives the same run for the same number of processes.
Only rank 0 validates; `convcli.training.run` lets only it report and write.

torch is imported inside the functions: see `convcli.interop.torch_model`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from convcli.errors import TrainingError
from convcli.interop.torch_model import build_torch_model, named_parameters, store_weights
from convcli.nn.model import Model
from convcli.nn.optim import SGD, Adam, Optimizer, scheduled_lr
from convcli.training.loop import EVAL_BATCH, EpochRecord, Evaluation, TrainConfig, diverged, evaluation
from convcli.training.placement import Placement, launched

if TYPE_CHECKING:
    import torch
    from torch import nn

INSTALL = 'pip install "convcli[torch]"'


def check_torch() -> None:
    """Refuse ``--backend torch`` where PyTorch is not installed, saying how to install it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TrainingError(f"--backend torch needs PyTorch, which is not installed: {INSTALL}") from None


def place(device: str) -> Placement:
    """Where this process trains: ``device`` cpu, cuda (refused without a GPU) or auto (cuda when
    PyTorch sees a GPU, else cpu); under torchrun, the GPU of its local rank."""
    import torch

    processes, rank, local_rank = launched()
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise TrainingError(
            "--device cuda: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False); "
            "give --device cpu, or --device auto to use a GPU where there is one"
        )
    if device == "cpu" or not available:
        return Placement("torch", "cpu", processes, rank, local_rank)
    gpus = torch.cuda.device_count()
    if local_rank >= gpus:
        raise TrainingError(
            f"--device {device}: process {local_rank} on this machine has no GPU of its own ({gpus} found): "
            f"start at most {gpus} processes per machine (torchrun --nproc-per-node {gpus})"
        )
    return Placement("torch", f"cuda:{local_rank}", processes, rank, local_rank)


def torch_optimizer(optimizer: Optimizer, net: nn.Module) -> torch.optim.Optimizer:
    """PyTorch's SGD or Adam with ``optimizer``'s settings, over ``net``'s parameters; weight decay
    (L2 added to the gradient, in both) on the weights, not on biases or batch norm's gamma and
    beta, as `convcli.nn.optim` applies it."""
    import torch

    named = named_parameters(net)
    decay = [p for name, p in named if name.rsplit(".", 1)[-1] == "w"]
    rest = [p for name, p in named if name.rsplit(".", 1)[-1] != "w"]
    groups = [
        group
        for group in ({"params": decay, "weight_decay": optimizer.weight_decay}, {"params": rest, "weight_decay": 0.0})
        if group["params"]
    ]
    if isinstance(optimizer, Adam):
        return torch.optim.Adam(groups, lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps)
    assert isinstance(optimizer, SGD), optimizer
    return torch.optim.SGD(groups, lr=optimizer.lr, momentum=optimizer.momentum, nesterov=optimizer.nesterov)


def load_optimizer_state(target: torch.optim.Optimizer, optimizer: Optimizer, net: nn.Module) -> None:
    """Give ``target`` the state of convcli's ``optimizer`` (Adam's moments, momentum's velocity)."""
    import torch

    state = optimizer.state
    for name, p in named_parameters(net):
        if f"{name}.m" in state:
            target.state[p] = {
                "step": torch.tensor(float(optimizer.steps)),
                "exp_avg": torch.from_numpy(state[f"{name}.m"]).to(p.device),
                "exp_avg_sq": torch.from_numpy(state[f"{name}.v"]).to(p.device),
            }
        elif name in state:
            target.state[p] = {"momentum_buffer": torch.from_numpy(state[name]).to(p.device)}


def store_optimizer_state(source: torch.optim.Optimizer, optimizer: Optimizer, net: nn.Module) -> None:
    """Give convcli's ``optimizer`` the state of ``source``, named as its own (see `convcli.nn.optim`)."""
    state: dict[str, np.ndarray] = {}
    for name, p in named_parameters(net):
        held = source.state.get(p, {})
        if "exp_avg" in held:
            state[f"{name}.m"] = held["exp_avg"].detach().cpu().numpy().copy()
            state[f"{name}.v"] = held["exp_avg_sq"].detach().cpu().numpy().copy()
        elif held.get("momentum_buffer") is not None:
            state[name] = held["momentum_buffer"].detach().cpu().numpy().copy()
    optimizer.state = state


class TorchTrainer:
    """Trains ``model`` with the settings of ``optimizer`` on PyTorch, where ``placement`` says;
    `fit` and `evaluate` take what `convcli.training.loop.fit` and `~convcli.training.loop.evaluate`
    take, less the model and optimiser; ``batch_size`` (the run's) must split evenly over the
    processes, checked before any work."""

    def __init__(self, model: Model, optimizer: Optimizer, placement: Placement, batch_size: int) -> None:
        import torch

        processes = placement.processes
        if batch_size % processes:
            raise TrainingError(
                f"--batch-size {batch_size} does not split evenly over {processes} processes: "
                f"give a multiple of {processes}"
            )
        self.model, self.optimizer, self.placement = model, optimizer, placement
        self.device = torch.device(placement.device)
        self.net = build_torch_model(model).to(self.device)
        self.trained = self.net  # or, in a process group, the DistributedDataParallel around it
        self.net_optimizer = torch_optimizer(optimizer, self.net)
        load_optimizer_state(self.net_optimizer, optimizer, self.net)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        config: TrainConfig,
        *,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        start_epoch: int = 0,
        on_batch: Callable[[int, int, float, float], None] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> list[EpochRecord]:
        """`convcli.training.loop.fit` on PyTorch; see the module's docstring for what differs."""
        import torch
        import torch.nn.functional as F
        from torch.utils.data import DistributedSampler

        processes, rank = self.placement.processes, self.placement.rank
        per_process = config.batch_size // processes
        n_classes = self.model.report.layers[-1].out_shape[-1]
        images = torch.from_numpy(x).to(self.device)
        labels = torch.from_numpy(y.astype(np.int64)).to(self.device)
        sampler: DistributedSampler[int] = DistributedSampler(
            cast(Any, range(len(x))), num_replicas=processes, rank=rank, shuffle=True, seed=config.seed
        )
        total = len(sampler) * processes  # the sampler repeats a few images so that every share is equal
        records = []
        with self._process_group():
            for epoch in range(start_epoch, config.epochs):
                lr = scheduled_lr(config.schedule, config.lr, epoch, config.epochs)
                self.optimizer.lr = lr
                for group in self.net_optimizer.param_groups:
                    group["lr"] = lr
                sampler.set_epoch(epoch)
                torch.manual_seed(int(np.random.SeedSequence((config.seed, epoch, rank)).generate_state(1)[0]))
                order = torch.tensor(list(sampler), device=self.device)
                self.trained.train()
                start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
                for b in range(0, len(order), per_process):
                    idx = order[b : b + per_process]
                    logits = self.trained(images[idx])
                    loss = F.cross_entropy(logits, labels[idx])
                    value = loss.item()
                    if not math.isfinite(value):
                        where = f"epoch {epoch + 1} (batch {b // per_process + 1})"
                        raise diverged(config, where, f"the loss became {value}")
                    self.net_optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.net_optimizer.step()
                    self.optimizer.steps += 1
                    loss_sum += value * len(idx)
                    correct += int((logits.argmax(dim=1) == labels[idx]).sum())
                    seen += len(idx)
                    if on_batch:
                        on_batch(min(seen * processes, total), total, loss_sum / seen, correct / seen)
                loss_sum, correct, seen = self._summed(loss_sum, correct, seen)
                seconds = time.perf_counter() - start
                if rank:
                    continue
                store_weights(self.net, self.model)
                store_optimizer_state(self.net_optimizer, self.optimizer, self.net)
                val = None
                if validation is not None and len(validation[1]):
                    val = self.evaluate(*validation, n_classes)
                    if not math.isfinite(val.loss):
                        raise diverged(config, f"the validation after epoch {epoch + 1}", f"the loss became {val.loss}")
                record = EpochRecord.measured(epoch, lr, loss_sum, correct, seen, seconds, val)
                records.append(record)
                if on_epoch:
                    on_epoch(record)
        return records

    def logits(self, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Logits (N, K) in evaluation mode, in batches to bound memory."""
        import torch

        self.net.eval()
        with torch.no_grad():
            parts = [
                self.net(torch.from_numpy(x[b : b + batch_size]).to(self.device)).cpu().numpy()
                for b in range(0, len(x), batch_size)
            ]
        return np.concatenate(parts)

    def evaluate(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> Evaluation:
        """`convcli.training.loop.evaluate` with PyTorch's forward pass."""
        return evaluation(self.logits(x), y, n_classes)

    @contextmanager
    def _process_group(self) -> Iterator[None]:
        """In several processes, a process group for the run, with ``self.trained`` the
        DistributedDataParallel around ``self.net`` (the same parameter tensors) meanwhile."""
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        if not self.placement.distributed:
            yield
            return
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.set_device(self.device)
        dist.init_process_group("nccl" if cuda else "gloo")
        try:
            self.trained = DistributedDataParallel(self.net, device_ids=[self.device.index] if cuda else None)
            yield
            # Rank 0 validates and saves after the others are done: a process that tore its
            # group down meanwhile could hang in exit, so all leave together.
            dist.barrier()
        finally:
            self.trained = self.net  # DDP's reducer goes before the group it uses
            dist.destroy_process_group()

    def _summed(self, loss_sum: float, correct: int, seen: int) -> tuple[float, int, int]:
        """An epoch's totals over every process."""
        if not self.placement.distributed:
            return loss_sum, correct, seen
        import torch
        import torch.distributed as dist

        totals = torch.tensor([loss_sum, correct, seen], dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        return float(totals[0]), int(totals[1]), int(totals[2])
