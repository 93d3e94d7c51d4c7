"""How much to measure: the quick mode (a few minutes) and the full mode."""

from __future__ import annotations

from dataclasses import dataclass, field

CLIP_DURATIONS_S: tuple[float, ...] = (1.0, 3.0, 10.0, 60.0)
"""The clip lengths of issue 6: every model and the service see the same clips."""


@dataclass(frozen=True)
class TimingBudget:
    """Repeats of one timed case: warm-up calls, then timed calls.

    A case stops after ``max_repeats`` calls, once ``budget_s`` has passed and at least
    ``min_repeats`` calls were timed, or once ``max_s`` has passed (slow peers on long clips
    then get fewer repeats, at least one).
    """

    warmup: int
    min_repeats: int
    max_repeats: int
    budget_s: float
    max_s: float


@dataclass(frozen=True)
class SpeedPlan:
    """Model-only cases: clip durations, batch sizes, thread counts."""

    durations_s: tuple[float, ...]
    batch_size_by_duration_s: dict[float, int]
    """Rows of the batched case per clip duration; 1 (or absent) skips the batched case."""
    threads: tuple[int, ...] = (1, 2)
    two_thread_durations_s: tuple[float, ...] = (3.0,)
    """Durations also timed with more than one thread (all threads for these)."""
    budget: TimingBudget = field(default_factory=lambda: TimingBudget(2, 5, 30, 10.0, 60.0))


@dataclass(frozen=True)
class HttpPlan:
    """HTTP cases: which clips at which concurrency, and how many requests."""

    concurrencies: tuple[int, ...] = (1, 4, 16)
    sweep_durations_s: tuple[float, ...] = (3.0,)
    """Durations sent at every concurrency; the others only at concurrency 1."""
    requests_by_concurrency: dict[int, int] = field(
        default_factory=lambda: {1: 100, 4: 200, 16: 400}
    )
    budget_s: float = 60.0
    """Wall-clock limit of one (duration, concurrency) case."""
    explain_requests: int = 30
    ready_timeout_s: float = 180.0


@dataclass(frozen=True)
class BenchMode:
    """One named mode of the benchmark."""

    name: str
    speed: SpeedPlan
    http: HttpPlan


QUICK = BenchMode(
    name="quick",
    speed=SpeedPlan(
        durations_s=CLIP_DURATIONS_S,
        batch_size_by_duration_s={3.0: 4},
        threads=(1, 2),
        two_thread_durations_s=(3.0,),
        budget=TimingBudget(warmup=1, min_repeats=3, max_repeats=10, budget_s=1.5, max_s=4.0),
    ),
    http=HttpPlan(
        sweep_durations_s=(3.0,),
        requests_by_concurrency={1: 15, 4: 32, 16: 64},
        budget_s=15.0,
        explain_requests=5,
    ),
)

FULL = BenchMode(
    name="full",
    speed=SpeedPlan(
        durations_s=CLIP_DURATIONS_S,
        batch_size_by_duration_s={1.0: 8, 3.0: 8, 10.0: 8, 60.0: 2},
        threads=(1, 2),
        two_thread_durations_s=CLIP_DURATIONS_S,
        budget=TimingBudget(warmup=2, min_repeats=5, max_repeats=30, budget_s=10.0, max_s=60.0),
    ),
    http=HttpPlan(
        sweep_durations_s=CLIP_DURATIONS_S,
        requests_by_concurrency={1: 100, 4: 200, 16: 400},
        budget_s=60.0,
        explain_requests=30,
    ),
)

MODES = {mode.name: mode for mode in (QUICK, FULL)}
