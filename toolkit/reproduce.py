"""``python -m toolkit reproduce``: does a retrained run give the shipped model?

Exports the checkpoint of ``<run-dir>/<run>`` (for example a fresh ``make train`` of run
``final``) to ONNX exactly as ``toolkit evaluate`` does (for a shipped int8 model also
quantised as evaluate does: calibrated on the run's training speakers), then compares it
with a shipped model directory: the sha256 of the two graphs, and the largest absolute
difference of every output head between the two graphs on the same real clips (the parity
clips of the packager: three clips of each training corpus, run one at a time). The report is
printed as JSON and written to ``<run-dir>/<run>/reproduction.json``; the command fails when a
head differs by more than the export parity tolerance (1e-4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.inference.manifest import read_manifest
from toolkit.export import (
    PARITY_TOLERANCE,
    export_onnx,
    graph_sha256,
    quantise_int8,
    run_onnx,
    session,
    sha256_of,
)
from toolkit.numerics import ENVIRONMENT_FILE
from toolkit.train.config import TrainConfig
from toolkit.train.experiment import read_recipe
from toolkit.train.loop import CHECKPOINT_FILE, load_checkpoint

REPORT_FILE = "reproduction.json"
RETRAINED_FILE = "model.reproduced.onnx"
RETRAINED_INT8_FILE = "model.reproduced.int8.onnx"


def head_differences(first: Path, second: Path, waveforms: list[np.ndarray]) -> dict[str, float]:
    """Largest absolute difference per output between two ONNX graphs over ``waveforms``
    (each run alone, batch of one)."""
    sessions = session(first), session(second)
    largest: dict[str, float] = {}
    for waveform in waveforms:
        lengths = np.array([waveform.size], dtype=np.int64)
        a, b = (run_onnx(s, waveform[None, :], lengths) for s in sessions)
        for name in a:
            difference = float(np.max(np.abs(a[name] - b[name])))
            largest[name] = max(largest.get(name, 0.0), difference)
    return largest


def shipped_variant(model_dir: Path) -> str:
    """``fp32`` or ``int8``: the variant the packager recorded in ``results.json``."""
    path = model_dir / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    return str(results.get("shipped", {}).get("variant", "fp32"))


def run_calibration_clips(run_dir: Path, run_name: str, config: TrainConfig) -> list[np.ndarray]:
    """The int8 calibration clips ``toolkit evaluate`` used for this run (same loading, same
    training speakers, same random draw)."""
    from toolkit.data.affect_norms import neutral_point
    from toolkit.evaluate import calibration_clips, served_crop_margin_s
    from toolkit.train.experiment import load_utterances, read_plan, recipe_clips, select

    utterances = load_utterances(config.data.corpora)
    clips = recipe_clips(config, utterances, neutral_point(), speech_crop=False)
    train = select(clips, read_plan(run_dir)[run_name].train_speakers)
    return calibration_clips(train, crop_margin_s=served_crop_margin_s(config.data, train))


def retrained_graph(
    run_dir: Path,
    run_name: str,
    variant: str,
    calibration: Sequence[np.ndarray] | None = None,
) -> tuple[Path, TrainConfig]:
    """Export the run's checkpoint (and quantise it for ``int8`` with the recipe's method);
    the graph and the recipe.

    ``calibration`` replaces the run's own static-int8 calibration clips (tests); dynamic
    int8 needs none, so none are decoded.
    """
    model, _, _ = load_checkpoint(run_dir / run_name / CHECKPOINT_FILE)
    config = read_recipe(run_dir)
    graph = export_onnx(model, run_dir / run_name / RETRAINED_FILE)
    if variant == "int8":
        method = config.export.int8_method
        clips: Sequence[np.ndarray] = []
        if method == "static":
            clips = (
                calibration
                if calibration is not None
                else run_calibration_clips(run_dir, run_name, config)
            )
        graph = quantise_int8(graph, run_dir / run_name / RETRAINED_INT8_FILE, clips, method)
    return graph, config


def compare_with_shipped(
    run_dir: Path,
    run_name: str,
    model_dir: Path,
    record: bool = False,
    calibration: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Export ``run_dir/run_name``'s checkpoint and compare it with ``model_dir``'s graph.

    An int8 model is compared with the retrained graph quantised the way ``toolkit evaluate``
    quantises (``calibration`` overrides its clips). With ``record``, the report is also
    written into ``model_dir/results.json`` (key ``reproduction``) and the model card is
    re-rendered, so the card states the outcome.

    Raises:
        AssertionError: an output differs by more than ``PARITY_TOLERANCE``.
    """
    from toolkit.package import parity_clips

    variant = shipped_variant(model_dir)
    retrained, config = retrained_graph(run_dir, run_name, variant, calibration)
    manifest = read_manifest(model_dir)
    shipped = model_dir / manifest.file
    differences = head_differences(retrained, shipped, parity_clips(list(config.data.corpora)))
    retrained_sha256 = sha256_of(retrained)
    report = {
        "run": str(run_dir / run_name),
        "shipped": str(shipped),
        "variant": variant,
        "sha256_retrained": retrained_sha256,
        "sha256_shipped": manifest.sha256,
        "identical_file": retrained_sha256 == manifest.sha256,
        "identical_graph": graph_sha256(retrained) == graph_sha256(shipped),
        "max_abs_difference": differences,
        "tolerance": PARITY_TOLERANCE,
        "environment_retrained": _environment(run_dir / run_name / ENVIRONMENT_FILE),
        "environment_shipped": _shipped_environment(model_dir),
    }
    (run_dir / run_name / REPORT_FILE).write_text(json.dumps(report, indent=1) + "\n")
    if record:
        record_in_model_dir(model_dir, report)
    worst = max(differences.values())
    if worst > PARITY_TOLERANCE:
        raise AssertionError(
            f"the retrained run differs from {shipped} by up to {worst:.3g} (> "
            f"{PARITY_TOLERANCE}): {differences}"
        )
    return report


def _environment(path: Path) -> dict[str, Any] | None:
    """A recorded ``environment.json`` (``None`` if the run predates the record)."""
    return json.loads(path.read_text()) if path.is_file() else None


def _shipped_environment(model_dir: Path) -> dict[str, Any] | None:
    """The training environment in the shipped model's ``results.json``, if recorded."""
    path = model_dir / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    environment: dict[str, Any] | None = results.get("shipped", {}).get("environment")
    return environment


def record_in_model_dir(model_dir: Path, report: dict[str, Any]) -> None:
    """Store ``report`` as ``reproduction`` in the model's ``results.json``; re-render its card."""
    from toolkit.card import record_result

    recorded = {k: v for k, v in report.items() if k not in ("run", "shipped")}
    record_result(model_dir, "reproduction", recorded)
