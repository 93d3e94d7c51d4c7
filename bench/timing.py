"""Robust wall-clock timing: warm-up, repeats within a budget, median and percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.modes import TimingBudget

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class TimingStats:
    """Summary of repeated wall-clock measurements, in milliseconds."""

    count: int
    median_ms: float
    mean_ms: float
    min_ms: float
    p5_ms: float
    p95_ms: float
    p99_ms: float

    def scaled(self, factor: float) -> TimingStats:
        """Every time multiplied by ``factor`` (e.g. ``1 / batch`` for time per clip)."""
        return TimingStats(
            count=self.count,
            median_ms=self.median_ms * factor,
            mean_ms=self.mean_ms * factor,
            min_ms=self.min_ms * factor,
            p5_ms=self.p5_ms * factor,
            p95_ms=self.p95_ms * factor,
            p99_ms=self.p99_ms * factor,
        )


def summarise_ms(durations_ms: Sequence[float]) -> TimingStats:
    """Median, mean, min and 5/95/99th percentiles (linear interpolation) of ``durations_ms``.

    Raises:
        ValueError: ``durations_ms`` is empty.
    """
    if not durations_ms:
        raise ValueError("no measurements to summarise")
    values = np.asarray(durations_ms, dtype=np.float64)
    p5, p50, p95, p99 = np.percentile(values, [5, 50, 95, 99])
    return TimingStats(
        count=int(values.size),
        median_ms=float(p50),
        mean_ms=float(values.mean()),
        min_ms=float(values.min()),
        p5_ms=float(p5),
        p95_ms=float(p95),
        p99_ms=float(p99),
    )


def call_ms(function: Callable[[], object]) -> float:
    """Wall-clock milliseconds of one call of ``function``."""
    start_ns = time.perf_counter_ns()
    function()
    return (time.perf_counter_ns() - start_ns) / NS_PER_MS


def time_calls(function: Callable[[], object], budget: TimingBudget) -> TimingStats:
    """Warm up, then time calls of ``function`` as ``budget`` allows (see ``TimingBudget``).

    A warm-up call longer than the whole budget ends the warm-up early: for calls that long
    the first-call overhead is small beside the call itself.
    """
    for _ in range(budget.warmup):
        if call_ms(function) > budget.budget_s * 1000.0:
            break
    durations_ms: list[float] = []
    start_ns = time.perf_counter_ns()
    while len(durations_ms) < budget.max_repeats:
        durations_ms.append(call_ms(function))
        elapsed_s = (time.perf_counter_ns() - start_ns) / NS_PER_S
        enough = len(durations_ms) >= budget.min_repeats
        if (enough and elapsed_s > budget.budget_s) or elapsed_s > budget.max_s:
            break
    return summarise_ms(durations_ms)
