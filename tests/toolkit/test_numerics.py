"""PyTorch's CPU kernels are pinned for training, and a run records what it was trained with."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.numerics import PINNED_KERNELS, pin_cpu_kernels

ROOT = Path(__file__).resolve().parents[2]
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def _environment_of_cli(**variables: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in PINNED_KERNELS} | variables
    completed = subprocess.run(
        [sys.executable, "-m", "toolkit", "environment"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    environment: dict[str, object] = json.loads(completed.stdout)
    return environment


@pytest.mark.skipif(not X86_64, reason="the pinned kernels are x86-64 instruction sets")
def test_the_toolkit_command_pins_avx2_kernels() -> None:
    environment = _environment_of_cli()
    assert environment["kernel_variables"] == PINNED_KERNELS
    assert environment["cpu_capability"] in ("AVX2", "DEFAULT")  # DEFAULT: no AVX2 here
    assert environment["torch"] and environment["machine"] == platform.machine()


@pytest.mark.skipif(not X86_64, reason="the pinned kernels are x86-64 instruction sets")
def test_an_explicit_kernel_choice_wins() -> None:
    environment = _environment_of_cli(ATEN_CPU_CAPABILITY="default")
    assert environment["cpu_capability"] == "DEFAULT"
    kernels = environment["kernel_variables"]
    assert isinstance(kernels, dict) and kernels["ATEN_CPU_CAPABILITY"] == "default"


def test_pinning_after_torch_is_imported_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401

    for name in PINNED_KERNELS:
        monkeypatch.delenv(name, raising=False)
    assert pin_cpu_kernels() is False
    assert not any(name in os.environ for name in PINNED_KERNELS)


def test_the_card_shows_the_training_environment() -> None:
    from service.inference.manifest import read_manifest
    from tests.shipped_models import shipped_default_dir
    from toolkit.card import render_card

    model_dir = shipped_default_dir()
    results = json.loads((model_dir / "results.json").read_text())
    environment = {"torch": "2.11.0", "cpu_capability": "AVX2"}
    results["shipped"]["environment"] = environment
    card = render_card(read_manifest(model_dir), results)
    assert "## Training environment" in card and '"cpu_capability": "AVX2"' in card
