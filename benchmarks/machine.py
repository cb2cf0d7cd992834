"""The header line every benchmark prints: what the numbers below it were measured on.

    from machine import machine_line   # benchmarks/ scripts run as ``python benchmarks/x.py``
    print(machine_line())

It names the processor (``/proc/cpuinfo``), numpy and the BLAS library it calls with the kernel
OpenBLAS picked for this processor and its thread count (threadpoolctl, the ``bench`` extra),
``OPENBLAS_CORETYPE`` when it forces a kernel, PyTorch (version, threads, the CPU capability its
kernels dispatch to) and OpenCV when the script imported them, and the load average against the
number of cores: on a shared machine, a load above the core count says the times are partly
other processes'. Importing this module imports nothing heavy; numpy is imported when the line
is made (every benchmark uses it).
"""

from __future__ import annotations

import os
import platform
import sys


def processor() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine() or "unknown processor"


def blas() -> str:
    """numpy's BLAS: library, version, the kernel it runs and its threads (threadpoolctl). Other
    BLAS libraries loaded by then (OpenCV's wheel brings its own OpenBLAS) are named after the
    package that holds them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        import numpy as np

        built = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        return f"{built.get('name', '?')} {built.get('version', '')}, kernel unknown (pip install threadpoolctl)"

    def owner(pool: dict) -> str:
        folder = os.path.basename(os.path.dirname(pool.get("filepath", "")))
        return folder.removesuffix(".libs")

    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    pools.sort(key=lambda p: owner(p) != "numpy")  # numpy's first
    described = [
        f"{p['internal_api']} {p.get('version')}, kernel {p.get('architecture') or '?'}, {p['num_threads']} threads"
        + ("" if owner(p) == "numpy" else f", from {owner(p)}")
        for p in pools
    ]
    return "; ".join(described) or "no BLAS loaded"


def machine_line() -> str:
    """One line: processor, cores and load, numpy and BLAS, and torch and cv2 if imported."""
    import numpy as np

    parts = [f"{processor()}", f"numpy {np.__version__} ({blas()})"]
    if "OPENBLAS_CORETYPE" in os.environ:
        parts.append(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}")
    torch = sys.modules.get("torch")
    if torch is not None:
        capability = torch.backends.cpu.get_cpu_capability()
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads, {capability})")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        parts.append(f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)")
    parts.append(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return "; ".join(parts)


if __name__ == "__main__":
    print(machine_line())
