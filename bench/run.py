"""One benchmark run: models, clips, model-only speed, the service under load, ratios,
targets, and the two output files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.clips import make_clips
from bench.compare import (
    service_ratios,
    service_targets,
    speed_ratios,
    speed_targets,
    throughput_scaling,
)
from bench.machine import describe_machine, load_average
from bench.model_speed import measure_speed, rows_needed
from bench.models import BenchModel, served_models
from bench.modes import BenchMode
from bench.report import SCHEMA_VERSION, write_json, write_markdown
from bench.service_bench import ServiceFigures, measure_service

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
SERVICE_THREADS = 1
"""The service's default ``SER_ONNX_INTRA_OP_THREADS``."""


@dataclass(frozen=True)
class RunOptions:
    """What to run and where to write it."""

    mode: BenchMode
    models_dir: Path
    data_dir: Path
    cache_dir: Path
    json_path: Path
    markdown_path: Path
    with_http: bool = True
    with_candidates: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)
    service_env: dict[str, str] = field(default_factory=dict)
    """Extra environment of the service (e.g. ``SER_MAX_BATCH_SEGMENTS``), recorded."""


def default_data_dir() -> Path:
    """``SER_DATA_DIR`` or ``../shared/data`` beside the checkout (as the tests use)."""
    return Path(os.environ.get("SER_DATA_DIR", REPOSITORY_ROOT.parent / "shared" / "data"))


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def our_models(options: RunOptions, notes: list[str]) -> tuple[list[BenchModel], Path]:
    """Models under ``models/``; placeholders (marked so) when there are none. Also the
    directory the service will serve."""
    found = served_models(options.models_dir) if options.models_dir.is_dir() else []
    if found:
        if not any("int8" in model.key for model in found):
            notes.append(f"no int8 variant under {options.models_dir}: only float models timed")
        return found, options.models_dir
    from bench.candidates import placeholder_models

    placeholder_dir, failures = placeholder_models(options.cache_dir, options.data_dir)
    notes.extend(failures)
    notes.append(
        f"{options.models_dir} holds no model yet: PLACEHOLDERS stand in for the default "
        "model (the default recipe's architecture with random weights, float and int8, or "
        "the tiny contract model of tests/onnx_factory.py if that architecture cannot be "
        "built); rerun when the trained model is there"
    )
    return served_models(placeholder_dir, role="placeholder"), placeholder_dir


def other_models(options: RunOptions, notes: list[str]) -> list[BenchModel]:
    """Candidate backbones (optional) and the peers, exported on first use."""
    from bench.peers import PEERS, export_peer

    onnx_dir = options.cache_dir / "onnx"
    models: list[BenchModel] = []
    if options.with_candidates:
        try:
            from bench.candidates import whisper_candidates

            models += whisper_candidates(onnx_dir)
        except Exception as exc:  # an optional candidate must not stop the run
            notes.append(f"Whisper tiny.en candidate not measured: {exc!r}")
    for spec in PEERS:
        log(f"peer {spec.key}: exporting (cached under {onnx_dir})")
        models.append(BenchModel(spec.key, "peer", spec.description, export_peer(spec, onnx_dir)))
    return models


def load_note(extra: tuple[str, ...]) -> str:
    """How busy the machine was when the run started."""
    load, cores = load_average(), os.cpu_count() or 1
    if load is None:
        text = "load average unknown."
    elif load[0] > 0.5 * cores:
        text = (
            f"1-minute load average {load[0]:.2f} on {cores} cores at the start: other "
            "processes were competing for the CPU, so absolute times are inflated and noisy."
        )
    else:
        text = f"1-minute load average {load[0]:.2f} on {cores} cores at the start."
    return " ".join((text, *extra))


def run(options: RunOptions) -> dict[str, Any]:
    """Measure everything ``options.mode`` asks for; write and return the results."""
    import torch

    torch.set_num_threads(1)
    started = datetime.now(UTC)
    start_s = time.monotonic()
    notes: list[str] = []
    machine = describe_machine()
    note = load_note(options.notes)
    ours, served_dir = our_models(options, notes)
    models = ours + other_models(options, notes)
    clips = make_clips(options.data_dir, rows_needed(options.mode.speed))
    log(f"model-only speed ({options.mode.name} mode, {len(models)} models)")
    rows, load_ms = measure_speed(models, clips, options.mode.speed)
    service, skipped = _service(options, served_dir, clips)
    if skipped:
        notes.append(f"service not measured: {skipped}")
    placeholder = any(model.role == "placeholder" for model in ours)
    machine["load_average_at_end"] = load_average()
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mode": options.mode.name,
        "started_utc": started.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": time.monotonic() - start_s,
        "machine": machine,
        "load_note": note,
        "plan": options.mode,
        "session_options": _session_options(options),
        "clips": _clip_summary(clips),
        "models": [_model_entry(model, load_ms) for model in models],
        "model_speed": rows,
        "service": service if service is not None else {"skipped": skipped},
        "ratios": {
            "model_speed": speed_ratios(rows, models),
            "service_vs_peers": service_ratios(rows, service) if service else [],
            "throughput_scaling": throughput_scaling(service) if service else [],
        },
        "targets": speed_targets(rows, models)
        + (service_targets(rows, service, placeholder) if service else []),
        "notes": notes,
    }
    write_json(results, options.json_path)
    write_markdown(results, options.markdown_path, options.json_path)
    log(f"wrote {options.json_path} and {options.markdown_path}")
    return results


def _service(
    options: RunOptions, served_dir: Path, clips: dict[float, Any]
) -> tuple[ServiceFigures | None, str | None]:
    """The service's figures, or why there are none (the model figures are kept either way)."""
    if not options.with_http:
        return None, "--no-http"
    log(f"service under load (models from {served_dir})")
    http_clips = {duration_s: rows[:1] for duration_s, rows in clips.items()}
    try:
        figures = measure_service(
            served_dir,
            http_clips,
            options.mode.http,
            SERVICE_THREADS,
            options.cache_dir / "service",
            options.service_env,
        )
    except (RuntimeError, OSError, subprocess.SubprocessError, httpx.HTTPError) as exc:
        return None, f"{exc!r}"[:2000]
    return figures, None


def _session_options(options: RunOptions) -> dict[str, Any]:
    return {
        "built_by": "service.inference.session.build_session (the service's own builder)",
        "intra_op_num_threads": list(options.mode.speed.threads),
        "inter_op_num_threads": 1,
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "providers": ["CPUExecutionProvider"],
        "service_intra_op_num_threads": SERVICE_THREADS,
        "service_extra_environment": options.service_env,
    }


def _clip_summary(clips: dict[float, Any]) -> dict[str, Any]:
    return {
        f"{duration_s:g}": {
            "rows": len(rows),
            "samples": int(rows[0].signal.size),
            "sources_of_row_0": list(rows[0].sources),
        }
        for duration_s, rows in clips.items()
    }


def _model_entry(model: BenchModel, load_ms: dict[str, dict[int, float]]) -> dict[str, Any]:
    return {
        "key": model.key,
        "role": model.role,
        "description": model.description,
        "onnx_file": str(_relative(model.onnx_path)),
        "size_mib": model.size_mib,
        "max_duration_s": model.max_duration_s,
        "load_ms_by_threads": load_ms.get(model.key, {}),
    }


def _relative(path: Path) -> Path:
    try:
        return path.resolve().relative_to(REPOSITORY_ROOT)
    except ValueError:
        return path
