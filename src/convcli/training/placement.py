"""Where a training run computes: the backend, the device, and which of how many processes this is.

``torchrun`` (PyTorch's launcher) starts one process per GPU or per share of the CPU and tells each
its place in environment variables (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); convcli reads them
here and nowhere else, and launches no process of its own. Nothing heavy is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """``backend`` (numpy or torch), ``device`` as PyTorch names it (``cpu``, ``cuda:0``),
    ``processes`` training together (DistributedDataParallel when more than one), and this
    process's ``rank`` among them (0 prints and writes) and ``local_rank`` on its machine."""

    backend: str = "numpy"
    device: str = "cpu"
    processes: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.processes > 1


def launched() -> tuple[int, int, int]:
    """``(processes, rank, local rank)`` as torchrun set them; ``(1, 0, 0)`` in a plain process."""
    env = os.environ
    return int(env.get("WORLD_SIZE", 1)), int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0))
