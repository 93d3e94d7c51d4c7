"""What the figures were measured on: CPU, cores, memory, load, library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("onnxruntime", "torch", "torchaudio", "numpy", "onnx", "fastapi", "uvicorn", "httpx")


def cpu_model() -> str:
    """The ``model name`` of /proc/cpuinfo, or ``platform.processor()`` elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_mib() -> float | None:
    """Physical memory from /proc/meminfo, ``None`` where it cannot be read."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    return None


def load_average() -> tuple[float, float, float] | None:
    """1, 5 and 15 minute load averages (other processes competing for the cores)."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def package_versions() -> dict[str, str | None]:
    """Installed version of each package that shapes the figures."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_machine() -> dict[str, Any]:
    """The machine block of results.json."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_mib": memory_total_mib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(),
        "load_average_at_start": load_average(),
    }
