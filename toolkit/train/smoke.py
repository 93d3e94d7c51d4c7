"""``python -m toolkit smoke``: train a few steps on a few clips, export, check parity (CI).

Uses the real corpora (a handful of clips of 2 RAVDESS and 2 EmoDB speakers), the default
recipe with every loss and augmentation switched on, 2 short epochs, then the ONNX export,
the PyTorch/ONNX parity check on a padded batch of real clips, int8 quantisation (static and
dynamic) and the manifest round trip through the service's pydantic classes. About 30 s on one
thread.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from service.inference.manifest import read_manifest
from toolkit.data.affect_norms import neutral_point
from toolkit.data.types import Utterance
from toolkit.export import (
    INT8_METHODS,
    check_parity,
    export_onnx,
    parity,
    quantise_int8,
    run_onnx,
    session,
)
from toolkit.train.config import TrainConfig
from toolkit.train.dataset import load_clips
from toolkit.train.experiment import (
    CONFIG_FILE,
    corpus_labels,
    load_utterances,
    log,
    write_environment,
)
from toolkit.train.loop import train_run

CLIPS_PER_SPEAKER = 6
SMOKE_SPEAKERS = ("ravdess/01", "ravdess/02", "emodb/03", "emodb/08")
SMOKE_VALIDATION = ("ravdess/03", "emodb/09")


def smoke_config() -> TrainConfig:
    """Default recipe, 2 epochs of batches of 8, 3 s clips."""
    config = TrainConfig()
    return replace(
        config,
        data=replace(config.data, max_duration_s=3.0),
        optim=replace(config.optim, epochs=2, batch_size=8, warmup_epochs=1),
    )


def run_smoke(out_dir: Path | None = None) -> dict[str, float]:
    """Run the smoke test; returns the parity differences. Raises on any failure."""
    started = time.monotonic()
    work = out_dir or Path(tempfile.mkdtemp(prefix="ser-smoke-"))
    config = smoke_config()
    utterances = load_utterances(config.data.corpora)
    labels = corpus_labels(utterances)

    def take(speakers: tuple[str, ...]) -> list:  # type: ignore[type-arg]
        return [
            u
            for s in speakers
            for u in [v for v in utterances if v.speaker_key == s][::10][:CLIPS_PER_SPEAKER]
        ]

    max_samples = int(config.data.max_duration_s * 16_000)
    neutral = neutral_point()
    train = load_clips(take(SMOKE_SPEAKERS), max_samples, neutral)
    validation = load_clips(take(SMOKE_VALIDATION), max_samples, neutral)
    outcome = train_run(config, train, validation, labels, neutral, work / "run", log)
    write_environment(work / "run")
    (work / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=1) + "\n")  # the recipe
    from toolkit.train.loop import load_checkpoint

    model, _, _ = load_checkpoint(outcome.checkpoint)
    onnx_path = export_onnx(model, work / "model.onnx")
    diffs = parity(model, onnx_path, validation.waveforms[:3] + train.waveforms[-2:])
    log(f"parity: {diffs}")
    check_parity(diffs)
    for method in INT8_METHODS:
        target = work / ("model.int8.onnx" if method == "static" else f"model.int8-{method}.onnx")
        int8_path = quantise_int8(onnx_path, target, train.waveforms[:8], method)
        outputs = run_onnx(
            session(int8_path),
            validation.waveforms[0][None, :],
            np.array([validation.waveforms[0].size]),
        )
        if not all(np.isfinite(v).all() for v in outputs.values()):
            raise AssertionError(f"{method} int8 model returned non-finite values")
    neutral_clips = [u for u in utterances if u.speaker_key in SMOKE_SPEAKERS][::5]
    _check_manifest_round_trip(onnx_path, [u for u in neutral_clips if u.label == "neutral"])
    log(f"smoke passed in {time.monotonic() - started:.1f} s ({work})")
    return diffs


def _check_manifest_round_trip(onnx_path: Path, neutral_clips: list[Utterance]) -> None:
    """A manifest built by the packager, with cue norms from ``neutral_clips``, validates with
    the service's reader."""
    from service.inference.manifest import write_manifest
    from toolkit.cue_norms import compute_cue_norms
    from toolkit.package import build_manifest

    calibration = {"temperature": 1.0, "distribution_temperature": 1.0, "abstain_threshold": 0.9}
    norms = compute_cue_norms(neutral_clips)
    manifest = build_manifest(
        "ser-smoke", "0.0.0", onnx_path, calibration, {}, 0.02, "smoke", norms
    )
    write_manifest(manifest, onnx_path.parent)
    if read_manifest(onnx_path.parent) != manifest:
        raise AssertionError("manifest did not survive the round trip")
