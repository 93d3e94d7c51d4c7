"""Export a PyTorch speech model ``(waveform, lengths) -> outputs`` to ONNX, with a file cache."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

SAMPLING_RATE_HZ = 16_000
MIN_EXPORT_SAMPLES = 1600
"""Shortest waveform declared to the exporter (0.1 s; wav2vec2's convolutions need 400)."""
MAX_EXPORT_SAMPLES = SAMPLING_RATE_HZ * 600
MAX_EXPORT_BATCH = 256
INPUT_NAMES = ("waveform", "lengths")


def example_batch(seconds: Sequence[float] = (3.0, 2.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-padded batch of noise ``(B, S)`` and its lengths ``(B,)`` (tracing input)."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([int(s * SAMPLING_RATE_HZ) for s in seconds], dtype=torch.int64)
    waveform = 0.1 * torch.randn(len(seconds), int(lengths.max()), generator=generator)
    return waveform * (torch.arange(waveform.shape[1])[None, :] < lengths[:, None]), lengths


def export_speech_model(
    module: nn.Module,
    path: Path,
    output_names: Sequence[str],
    example: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Path:
    """Export ``module`` with the dynamo exporter into one self-contained file at ``path``.

    Inputs ``waveform`` float32 ``(batch, samples)`` and ``lengths`` int64 ``(batch,)``;
    batch and samples are dynamic.

    Raises:
        RuntimeError: the exporter returned no program.
    """
    batch = torch.export.Dim("batch", min=1, max=MAX_EXPORT_BATCH)
    samples = torch.export.Dim("samples", min=MIN_EXPORT_SAMPLES, max=MAX_EXPORT_SAMPLES)
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module.eval(),
            example or example_batch(),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=list(output_names),
            dynamic_shapes=({0: batch, 1: samples}, {0: batch}),
            verbose=False,
        )
    if program is None:
        raise RuntimeError(f"torch.onnx.export returned no program for {path.name}")
    program.save(str(path), external_data=False)
    return path


def cache_tag(*parts: str) -> str:
    """A short hash of ``parts`` and the torch version, for cache file names."""
    text = "|".join((torch.__version__, *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached(path: Path, build: Callable[[Path], Path]) -> Path:
    """``path`` if it exists, else ``build(path)`` (written through a temporary name)."""
    if path.is_file():
        return path
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    build(partial)
    partial.replace(path)
    return path
