"""benchmarks/machine.py: the header line names what the benchmarks' numbers were measured on."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import machine
from conftest import REPO


def test_the_line_names_processor_numpy_blas_and_load():
    line = machine.machine_line()
    assert line.startswith(machine.processor())
    assert f"numpy {np.__version__}" in line
    assert f"on {os.cpu_count()} cores" in line and "load average" in line
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    [numpy_blas] = [p for p in threadpool_info() if "numpy" in p["filepath"] and p["user_api"] == "blas"]
    assert f"kernel {numpy_blas['architecture']}, {numpy_blas['num_threads']} threads" in line


def test_torch_and_opencv_are_named_once_imported():
    torch = pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    line = machine.machine_line()
    assert f"torch {torch.__version__} ({torch.get_num_threads()} threads, " in line
    assert torch.backends.cpu.get_cpu_capability() in line
    assert f"OpenCV {cv2.__version__}" in line


def test_a_forced_openblas_kernel_is_named():
    # a process of its own: OpenBLAS reads the variable when it loads
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    script = "import machine; print(machine.machine_line())"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO / "benchmarks", capture_output=True, text=True, check=True
    )
    assert "OPENBLAS_CORETYPE=Haswell" in done.stdout
    assert "torch" not in done.stdout and "OpenCV" not in done.stdout  # neither was imported
