"""Model-only inference time per clip, batch 1 and batched, at each thread count.

Contract models run through the service's own ``OnnxModel``; the others (peers, candidate
backbones) through a bare session built by the service's own session builder, so every
model has the same ONNX Runtime options (``intra_op_num_threads`` = the thread count,
``inter_op_num_threads`` = 1, all graph optimisations, no spinning threads, CPU provider:
``service.inference.session.SessionTuning``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.clips import Clip
from bench.models import BenchModel
from bench.modes import SpeedPlan
from bench.timing import NS_PER_MS, TimingStats, time_calls
from service.inference.session import OnnxModel, build_session
from service.pipeline import pad_batch

Runner = Callable[[np.ndarray, np.ndarray], object]
"""Runs one zero-padded batch: ``waveforms`` float32 ``(B, S)``, ``lengths`` int64 ``(B,)``."""


@dataclass(frozen=True)
class SpeedCase:
    """One timed configuration."""

    threads: int
    duration_s: float
    batch: int


@dataclass(frozen=True)
class SpeedRow:
    """The time of one model on one case; ``per_clip`` is ``per_call`` divided by the batch."""

    model: str
    threads: int
    duration_s: float
    batch: int
    per_call: TimingStats
    per_clip: TimingStats

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (median)."""
        return self.per_clip.median_ms / (1000.0 * self.duration_s)


@dataclass(frozen=True)
class OpenedModel:
    """A model ready to run, and how long opening it took (session build, checks, dry run)."""

    model: BenchModel
    threads: int
    run: Runner
    load_ms: float


def open_model(model: BenchModel, threads: int) -> OpenedModel:
    """Build the model's session with ``threads`` intra-op threads."""
    start_ns = time.perf_counter_ns()
    runner = _contract_runner(model, threads) if model.model_dir else _bare_runner(model, threads)
    return OpenedModel(model, threads, runner, (time.perf_counter_ns() - start_ns) / NS_PER_MS)


def _contract_runner(model: BenchModel, threads: int) -> Runner:
    assert model.model_dir is not None
    return OnnxModel(model.model_dir, intra_op_threads=threads).run


def _bare_runner(model: BenchModel, threads: int) -> Runner:
    session = build_session(model.onnx_path, threads)

    def run(waveforms: np.ndarray, lengths: np.ndarray) -> object:
        return session.run(None, {"waveform": waveforms, "lengths": lengths})

    return run


def plan_cases(plan: SpeedPlan) -> list[SpeedCase]:
    """Every (threads, duration, batch) of ``plan``; more threads only where it says."""
    cases: list[SpeedCase] = []
    for threads in plan.threads:
        durations = plan.durations_s if threads == 1 else plan.two_thread_durations_s
        for duration_s in durations:
            cases.append(SpeedCase(threads, duration_s, 1))
            batch = plan.batch_size_by_duration_s.get(duration_s, 1)
            if batch > 1:
                cases.append(SpeedCase(threads, duration_s, batch))
    return cases


def rows_needed(plan: SpeedPlan) -> dict[float, int]:
    """Clips needed per duration (the largest batch)."""
    return {d: max(1, plan.batch_size_by_duration_s.get(d, 1)) for d in plan.durations_s}


def time_case(opened: OpenedModel, case: SpeedCase, clips: list[Clip], plan: SpeedPlan) -> SpeedRow:
    """Time ``opened`` on the first ``case.batch`` clips of the case's duration."""
    waveforms, lengths = pad_batch([clip.signal for clip in clips[: case.batch]])
    per_call = time_calls(lambda: opened.run(waveforms, lengths), plan.budget)
    return SpeedRow(
        opened.model.key,
        case.threads,
        case.duration_s,
        case.batch,
        per_call,
        per_call.scaled(1.0 / case.batch),
    )


def applies(model: BenchModel, case: SpeedCase) -> bool:
    """False where the clip is longer than the model accepts (Whisper: 30 s)."""
    return model.max_duration_s is None or case.duration_s <= model.max_duration_s


def measure_speed(
    models: list[BenchModel], clips: dict[float, list[Clip]], plan: SpeedPlan
) -> tuple[list[SpeedRow], dict[str, dict[int, float]]]:
    """Every case for every model; also each model's open time (ms) per thread count.

    Cases are the outer loop and models the inner one, so a change in machine load during
    the run affects every model of a case alike (the ratios are what we quote).
    """
    rows: list[SpeedRow] = []
    load_ms: dict[str, dict[int, float]] = {model.key: {} for model in models}
    for threads in plan.threads:
        opened = [open_model(model, threads) for model in models]
        for item in opened:
            load_ms[item.model.key][threads] = item.load_ms
        for case in (c for c in plan_cases(plan) if c.threads == threads):
            for item in opened:
                if applies(item.model, case):
                    rows.append(time_case(item, case, clips[case.duration_s], plan))
                    _progress(rows[-1])
        del opened
    return rows, load_ms


def _progress(row: SpeedRow) -> None:
    print(
        f"  {row.model:<32} {row.threads} thr {row.duration_s:>4.0f} s x{row.batch:<2} "
        f"{row.per_clip.median_ms:10.2f} ms/clip (n={row.per_call.count})",
        file=sys.stderr,
        flush=True,
    )
