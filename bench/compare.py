"""Ratios to the peers (what we quote: absolute times vary between machines) and the
targets of issue 6, each marked met or missed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.http_load import LoadResult
from bench.model_speed import SpeedRow
from bench.models import BenchModel
from bench.service_bench import ServiceFigures

REFERENCE_DURATION_S = 3.0
DISTILHUBERT = "distilhubert"
WAV2VEC2_BASE = "wav2vec2-base"
SPEEDUP_TARGETS = {DISTILHUBERT: 20.0, WAV2VEC2_BASE: 40.0}
THROUGHPUT_SCALING_TARGET = 3.0
MEMORY_TARGET_MIB = 500.0


@dataclass(frozen=True)
class Target:
    """One target of the issue and whether the run met it (``None``: not measured)."""

    target: str
    subject: str
    value: float | None
    threshold: float
    met: bool | None
    placeholder: bool
    note: str = ""


def find_row(
    rows: list[SpeedRow], model: str, threads: int, duration_s: float, batch: int
) -> SpeedRow | None:
    """The row of one model and case, if it was measured."""
    for row in rows:
        if (row.model, row.threads, row.duration_s, row.batch) == (
            model,
            threads,
            duration_s,
            batch,
        ):
            return row
    return None


def speed_ratios(rows: list[SpeedRow], models: list[BenchModel]) -> list[dict[str, Any]]:
    """For every non-peer row and peer: peer time per clip / model time per clip (medians)."""
    peers = [model.key for model in models if model.role == "peer"]
    ratios: list[dict[str, Any]] = []
    for row in rows:
        if row.model in peers:
            continue
        for peer in peers:
            other = find_row(rows, peer, row.threads, row.duration_s, row.batch)
            if other is not None and row.per_clip.median_ms > 0:
                ratios.append(
                    {
                        "model": row.model,
                        "peer": peer,
                        "threads": row.threads,
                        "duration_s": row.duration_s,
                        "batch": row.batch,
                        "speedup": other.per_clip.median_ms / row.per_clip.median_ms,
                    }
                )
    return ratios


def service_ratios(rows: list[SpeedRow], service: ServiceFigures) -> list[dict[str, Any]]:
    """Each peer's model-only time (batch 1, 1 thread) / the service's end-to-end p50 at
    concurrency 1 on the same clip: above 1, the whole service answers before the peer
    alone has computed."""
    ratios: list[dict[str, Any]] = []
    results = [r for r in [*service.predict, service.explain] if r and r.concurrency == 1]
    for result in results:
        for peer in SPEEDUP_TARGETS:
            row = find_row(rows, peer, 1, result.duration_s, 1)
            if row is not None and result.latency is not None:
                ratios.append(
                    {
                        "route": result.route,
                        "duration_s": result.duration_s,
                        "peer": peer,
                        "peer_model_only_ms": row.per_clip.median_ms,
                        "service_p50_ms": result.latency.median_ms,
                        "ratio": row.per_clip.median_ms / result.latency.median_ms,
                    }
                )
    return ratios


def throughput_scaling(service: ServiceFigures) -> list[dict[str, Any]]:
    """Throughput at each concurrency / throughput at concurrency 1, per clip duration."""
    by_case = {(r.duration_s, r.concurrency): r for r in service.predict}
    scaling: list[dict[str, Any]] = []
    for (duration_s, concurrency), result in sorted(by_case.items()):
        base = by_case.get((duration_s, 1))
        if concurrency > 1 and base is not None and base.throughput_rps > 0:
            scaling.append(
                {
                    "duration_s": duration_s,
                    "concurrency": concurrency,
                    "ratio_to_concurrency_1": result.throughput_rps / base.throughput_rps,
                }
            )
    return scaling


def speed_targets(rows: list[SpeedRow], models: list[BenchModel]) -> list[Target]:
    """Model-only per 3 s clip (batch 1, 1 thread): >= 20x DistilHuBERT, >= 40x wav2vec2-base,
    for our models (placeholders while ``models/`` is empty) and the candidate backbones."""
    targets: list[Target] = []
    for model in (m for m in models if m.role != "peer"):
        ours = find_row(rows, model.key, 1, REFERENCE_DURATION_S, 1)
        for peer, threshold in SPEEDUP_TARGETS.items():
            other = find_row(rows, peer, 1, REFERENCE_DURATION_S, 1)
            value = other.per_clip.median_ms / ours.per_clip.median_ms if ours and other else None
            targets.append(
                Target(
                    f"model-only 3 s clip >= {threshold:g}x faster than {peer}",
                    model.key,
                    value,
                    threshold,
                    None if value is None else value >= threshold,
                    model.role == "placeholder",
                    _role_note(model),
                )
            )
    return targets


def _role_note(model: BenchModel) -> str:
    if model.role == "candidate":
        return "backbone only (no pooling or heads): an upper bound on its speedup"
    if model.role == "placeholder":
        return "placeholder for the default model (models/ is empty)"
    return ""


def service_targets(
    rows: list[SpeedRow], service: ServiceFigures, placeholder: bool
) -> list[Target]:
    """End-to-end /predict on 3 s faster than DistilHuBERT alone; throughput at c16 >= 3x
    c1; peak resident memory of the service under 500 MiB."""
    subject = _default_model(service)
    predict_3s = _result(service.predict, REFERENCE_DURATION_S, 1)
    peer = find_row(rows, DISTILHUBERT, 1, REFERENCE_DURATION_S, 1)
    faster = (
        peer.per_clip.median_ms / predict_3s.latency.median_ms
        if peer and predict_3s and predict_3s.latency
        else None
    )
    c16 = _result(service.predict, REFERENCE_DURATION_S, 16)
    scaling = (
        c16.throughput_rps / predict_3s.throughput_rps
        if c16 and predict_3s and predict_3s.throughput_rps > 0
        else None
    )
    memory = service.memory_at_end.peak_rss_mib if service.memory_at_end else None
    return [
        Target(
            "end-to-end /predict p50 on 3 s faster than DistilHuBERT model-only (ratio > 1)",
            subject,
            faster,
            1.0,
            _at_least(faster, 1.0, strict=True),
            placeholder,
        ),
        Target(
            "throughput at concurrency 16 >= 3x concurrency 1 (3 s clip)",
            subject,
            scaling,
            THROUGHPUT_SCALING_TARGET,
            _at_least(scaling, THROUGHPUT_SCALING_TARGET),
            placeholder,
        ),
        Target(
            "service peak RSS < 500 MiB with the models loaded (MiB)",
            subject,
            memory,
            MEMORY_TARGET_MIB,
            None if memory is None else memory < MEMORY_TARGET_MIB,
            placeholder,
            "after all the load; models served: " + _served_keys(service),
        ),
    ]


def _at_least(value: float | None, threshold: float, strict: bool = False) -> bool | None:
    if value is None:
        return None
    return value > threshold if strict else value >= threshold


def _result(results: list[LoadResult], duration_s: float, concurrency: int) -> LoadResult | None:
    for result in results:
        if (result.duration_s, result.concurrency) == (duration_s, concurrency):
            return result
    return None


def _served(service: ServiceFigures) -> list[dict[str, Any]]:
    served = service.served.get("models", []) if isinstance(service.served, dict) else []
    return [model for model in served if isinstance(model, dict)]


def _default_model(service: ServiceFigures) -> str:
    for model in _served(service):
        if model.get("default"):
            return f"{model.get('name')}@{model.get('version')}"
    return "unknown"


def _served_keys(service: ServiceFigures) -> str:
    return ", ".join(f"{m.get('name')}@{m.get('version')}" for m in _served(service))
