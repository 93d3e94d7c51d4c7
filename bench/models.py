"""Every model the benchmark times: ours (``models/``), placeholders, candidates and peers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from service.inference.manifest import MANIFEST_FILE_NAME, read_manifest

Role = Literal["ours", "placeholder", "candidate", "peer"]
MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class BenchModel:
    """One timed model.

    Attributes:
        key: ``name@version`` for served models, a short name otherwise.
        role: ``ours`` (a real model under ``models/``), ``placeholder`` (stands in for
            ours while ``models/`` is empty), ``candidate`` (a backbone under consideration)
            or ``peer`` (what we compare with).
        onnx_path: the graph; inputs ``waveform`` ``(batch, samples)`` and ``lengths``.
        model_dir: set for models that follow the contract: they run through the service's
            own ``OnnxModel``; ``None``: a bare session with the same options.
        max_duration_s: longest input the graph accepts (``None``: no limit).
    """

    key: str
    role: Role
    description: str
    onnx_path: Path
    model_dir: Path | None = None
    max_duration_s: float | None = None

    @property
    def size_mib(self) -> float:
        """Size of the ONNX file (weights inside) in MiB."""
        return self.onnx_path.stat().st_size / MEBIBYTE


def served_models(models_dir: Path, role: Role = "ours") -> list[BenchModel]:
    """Every ``models_dir/<name>/<version>/`` with a manifest, in name order."""
    found: list[BenchModel] = []
    for manifest_path in sorted(models_dir.glob(f"*/*/{MANIFEST_FILE_NAME}")):
        model_dir = manifest_path.parent
        manifest = read_manifest(model_dir)
        found.append(
            BenchModel(
                key=f"{manifest.name}@{manifest.version}",
                role=role,
                description=manifest.description or f"{manifest.name} {manifest.version}",
                onnx_path=model_dir / manifest.file,
                model_dir=model_dir,
                max_duration_s=manifest.windowing.max_input_s,
            )
        )
    return found
