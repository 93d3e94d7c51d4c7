"""Pin the CPU kernels PyTorch dispatches to, so that a seeded training gives the same bytes on
every x86-64 machine with AVX2, and record what a run was trained with.

PyTorch picks its CPU kernels by what the processor supports, at import time, in three
libraries: ATen's own vectorised kernels (``ATEN_CPU_CAPABILITY``: default, avx2, avx512),
oneDNN's convolutions and matrix products (``ONEDNN_MAX_CPU_ISA``) and MKL's BLAS
(``MKL_CBWR``, Intel's conditional numerical reproducibility). Different kernels round
differently, so the same seed trains another model on a machine with AVX-512 than on one with
AVX2 only. Measured here (the smoke run of ``toolkit.train.smoke``, one thread, AMD EPYC with
AVX2): capping ATen at ``default`` or oneDNN at ``AVX`` each changed the trained graph's
sha256; ``MKL_CBWR`` at AVX or AVX2 did not, and the three caps at AVX2 gave the uncapped
graph. AVX2 is the cap: every x86-64 server of the last decade has it, and it is what this
project's models were trained with. The variables must be set before ``torch`` is imported;
``python -m toolkit`` does it first thing (an explicit value in the environment wins).

References: PyTorch ``ATEN_CPU_CAPABILITY`` (aten/src/ATen/native/DispatchStub.cpp); oneDNN
"CPU Dispatcher Control" (``ONEDNN_MAX_CPU_ISA``); Intel oneMKL developer guide, "Obtaining
Numerically Reproducible Results" (``MKL_CBWR``).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

PINNED_KERNELS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
}
ENVIRONMENT_FILE = "environment.json"


def pin_cpu_kernels() -> bool:
    """Set the unset ``PINNED_KERNELS`` variables on x86-64, before torch is imported.

    Returns whether the kernels are pinned: ``False`` on other processors or when torch was
    already imported (too late: its dispatch is fixed).
    """
    if platform.machine().lower() not in ("x86_64", "amd64") or "torch" in sys.modules:
        return False
    for name, value in PINNED_KERNELS.items():
        os.environ.setdefault(name, value)
    return True


def training_environment() -> dict[str, Any]:
    """What decides the numerics of a training run: versions, processor, kernels, threads."""
    import numpy as np
    import torch

    return {
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _processor_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "kernel_variables": {name: os.environ.get(name) for name in PINNED_KERNELS},
        "torch_threads": torch.get_num_threads(),
    }


def _processor_name() -> str:
    """The ``model name`` line of /proc/cpuinfo (Linux), else what :mod:`platform` says."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()
