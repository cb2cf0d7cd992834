"""Optimisers (SGD with optional momentum or Nesterov momentum, Adam) and learning-rate schedules.

Each optimiser updates the model's parameters in place from the gradients its layers filled in.
Weight decay is L2 added to the gradient, ``g + wd * w``, as PyTorch's ``weight_decay``; it is
applied to weights, not to biases or batch norm's gamma and beta. Update rules follow PyTorch's
``torch.optim.SGD`` and ``torch.optim.Adam`` so runs compare.
"""

from __future__ import annotations

import math

import numpy as np

from convcli.errors import TrainingError
from convcli.nn.choices import OPTIMIZERS, SCHEDULES, STATE_COPIES  # noqa: F401  (STATE_COPIES re-exported)
from convcli.nn.model import Model


class Optimizer:
    """Shared bookkeeping: the parameters, the learning rate and named state arrays."""

    def __init__(self, model: Model, lr: float, weight_decay: float = 0.0) -> None:
        self.model, self.lr, self.weight_decay = model, lr, weight_decay
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def _gradients(self):
        for name, layer, key in self.model.parameters():
            g = layer.grads[key]
            if self.weight_decay and key == "w":
                g = g + self.weight_decay * layer.params[key]
            yield name, layer.params, key, g

    def step(self) -> None:
        self.steps += 1
        for name, params, key, g in self._gradients():
            params[key] -= self._update(name, g).astype(np.float32, copy=False)

    def _update(self, name: str, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**{k: v.copy() for k, v in self.state.items()}, "steps": np.array(self.steps)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.steps = int(state.get("steps", 0))
        self.state = {k: np.asarray(v, np.float32).copy() for k, v in state.items() if k != "steps"}


class SGD(Optimizer):
    """``v = mu * v + g``; step ``lr * v``, or ``lr * (g + mu * v)`` with Nesterov; ``mu = 0`` is plain SGD."""

    def __init__(
        self, model: Model, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        super().__init__(model, lr, weight_decay)
        self.momentum, self.nesterov = momentum, nesterov

    def _update(self, name, g):
        if not self.momentum:
            return self.lr * g
        v = self.state.get(name)
        v = g.copy() if v is None else self.momentum * v + g
        self.state[name] = v
        return self.lr * (g + self.momentum * v if self.nesterov else v)


class Adam(Optimizer):
    """Kingma & Ba 2015 with bias correction: ``m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)``."""

    def __init__(
        self,
        model: Model,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(model, lr, weight_decay)
        self.betas, self.eps = betas, eps

    def _update(self, name, g):
        b1, b2 = self.betas
        m = b1 * self.state.get(f"{name}.m", 0) + (1 - b1) * g
        v = b2 * self.state.get(f"{name}.v", 0) + (1 - b2) * g * g
        self.state[f"{name}.m"], self.state[f"{name}.v"] = m, v
        m_hat, v_hat = m / (1 - b1**self.steps), v / (1 - b2**self.steps)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def make_optimizer(name: str, model: Model, lr: float, weight_decay: float = 0.0, momentum: float = 0.9) -> Optimizer:
    """The optimiser called ``name`` (one of ``OPTIMIZERS``)."""
    if name == "sgd":
        return SGD(model, lr, weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return SGD(model, lr, momentum, name == "nesterov", weight_decay)
    if name == "adam":
        return Adam(model, lr, weight_decay=weight_decay)
    raise TrainingError(f"--optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


def scheduled_lr(
    schedule: str, base_lr: float, epoch: int, epochs: int, step_size: int | None = None, gamma: float = 0.1
) -> float:
    """The learning rate for ``epoch`` (0-based) of ``epochs``.

    - ``none``: constant.
    - ``step``: times ``gamma`` every ``step_size`` epochs (default: a third of the run, at least 1).
    - ``cosine``: ``lr/2 * (1 + cos(pi * epoch / epochs))`` (Loshchilov & Hutter 2017, no restarts).

    >>> [round(scheduled_lr("cosine", 0.1, e, 4), 4) for e in range(4)]
    [0.1, 0.0854, 0.05, 0.0146]
    >>> [scheduled_lr("step", 1.0, e, 6) for e in range(6)]
    [1.0, 1.0, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]
    """
    if schedule == "none":
        return base_lr
    if schedule == "step":
        size = step_size or max(1, epochs // 3)
        return base_lr * gamma ** (epoch // size)
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    raise TrainingError(f"--schedule {schedule!r} is not one of {', '.join(SCHEDULES)}")
