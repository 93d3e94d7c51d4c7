"""``python -m bench.ort_options``: ONNX Runtime session options timed side by side.

Every candidate gets its own session of the same model (default: the service's default model,
``models/<models/DEFAULT>/<latest>``) built by the service's own ``session_options``. The candidates
are timed in interleaved rounds (each round calls every candidate once, in a shuffled order),
so load from other processes falls on all of them alike; compare rows of one run only.
Cases: one 3 s clip (batch 1, the lone /predict) and eight 3 s clips in one call (batch 8,
what the micro-batcher sends under load), real speech from ``../shared/data`` (bench.clips).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.clips import make_clips
from bench.machine import load_average
from bench.run import REPOSITORY_ROOT, default_data_dir
from bench.timing import NS_PER_MS, TimingStats, summarise_ms
from service.inference.batching import pad_batch
from service.inference.manifest import read_manifest
from service.inference.registry import shipped_default
from service.inference.session import SessionTuning, session_options

CLIP_S = 3.0
BATCH_ROWS = 8
WARMUP_CALLS = 3


@dataclass(frozen=True)
class Candidate:
    """One set of options: the intra-op thread count and the rest."""

    name: str
    intra_op_threads: int
    tuning: SessionTuning


def candidates() -> list[Candidate]:
    """The previous defaults, a second session of them (the noise of the run), then one change
    at a time."""
    base = SessionTuning(
        inter_op_threads=1,
        graph_level="all",
        cpu_mem_arena=True,
        parallel_execution=False,
        spinning=True,
    )
    return [
        Candidate("intra 1, all, arena, sequential (was)", 1, base),
        Candidate("same again (noise check)", 1, base),
        Candidate("intra 2", 2, base),
        Candidate("intra 2, no spinning", 2, replace(base, spinning=False)),
        Candidate("intra 1, no spinning", 1, replace(base, spinning=False)),
        Candidate("graph basic", 1, replace(base, graph_level="basic")),
        Candidate("graph extended", 1, replace(base, graph_level="extended")),
        Candidate("arena off", 1, replace(base, cpu_mem_arena=False)),
        Candidate(
            "parallel, inter 2", 1, replace(base, parallel_execution=True, inter_op_threads=2)
        ),
    ]


@dataclass
class Timed:
    """Measurements of one candidate (milliseconds)."""

    candidate: Candidate
    open_ms: float
    run: Callable[[np.ndarray, np.ndarray], object]
    single_ms: list[float]
    batch_ms: list[float]


def open_candidate(model_path: Path, inputs: tuple[str, str], candidate: Candidate) -> Timed:
    start_ns = time.perf_counter_ns()
    options = session_options(candidate.intra_op_threads, candidate.tuning)
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    open_ms = (time.perf_counter_ns() - start_ns) / NS_PER_MS
    waveform_name, lengths_name = inputs

    def run(waveforms: np.ndarray, lengths: np.ndarray) -> object:
        return session.run(None, {waveform_name: waveforms, lengths_name: lengths})

    return Timed(candidate, open_ms, run, [], [])


def timed_ms(
    run: Callable[[np.ndarray, np.ndarray], object], batch: tuple[np.ndarray, ...]
) -> float:
    start_ns = time.perf_counter_ns()
    run(batch[0], batch[1])
    return (time.perf_counter_ns() - start_ns) / NS_PER_MS


def measure(
    timed: list[Timed], single: tuple[np.ndarray, ...], batch: tuple[np.ndarray, ...], rounds: int
) -> None:
    """Warm every session up, then ``rounds`` interleaved rounds in a shuffled order."""
    for entry in timed:
        for _ in range(WARMUP_CALLS):
            entry.run(*single)
            entry.run(*batch)
    order = list(timed)
    shuffler = random.Random(0)
    for _ in range(rounds):
        shuffler.shuffle(order)
        for entry in order:
            entry.single_ms.append(timed_ms(entry.run, single))
            entry.batch_ms.append(timed_ms(entry.run, batch))


def table(timed: list[Timed]) -> str:
    """Markdown: median and p95 per call at batch 1, median per clip at batch 8, vs the first."""
    base_single = summarise_ms(timed[0].single_ms).median_ms
    base_batch = summarise_ms(timed[0].batch_ms).median_ms
    lines = [
        "| options | open ms | batch 1: median ms | p95 ms | vs first "
        "| batch 8: ms per clip | vs first |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in timed:
        single: TimingStats = summarise_ms(entry.single_ms)
        batch = summarise_ms(entry.batch_ms)
        lines.append(
            f"| {entry.candidate.name} | {entry.open_ms:.0f} | {single.median_ms:.2f} | "
            f"{single.p95_ms:.2f} | {single.median_ms / base_single:.2f}x | "
            f"{batch.median_ms / BATCH_ROWS:.2f} | {batch.median_ms / base_batch:.2f}x |"
        )
    return "\n".join(lines)


def default_model_dir(models_dir: Path) -> Path:
    """The newest version of the default model (``models/DEFAULT``)."""
    name = shipped_default(models_dir)
    if name is None:
        raise SystemExit(f"{models_dir} names no default model; pass --model-dir")
    return sorted((models_dir / name).iterdir())[-1]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ort_options", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="a models/<name>/<version>/")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--rounds", type=int, default=60)
    arguments = parser.parse_args()
    model_dir = arguments.model_dir or default_model_dir(REPOSITORY_ROOT / "models")
    manifest = read_manifest(model_dir)
    if manifest.inputs.lengths is None:
        raise SystemExit(f"{model_dir}: the model has no lengths input")
    clips = make_clips(arguments.data_dir, {CLIP_S: BATCH_ROWS})[CLIP_S]
    single = pad_batch([clips[0].signal])
    batch = pad_batch([clip.signal for clip in clips])
    load_before = load_average()
    inputs = (manifest.inputs.waveform, manifest.inputs.lengths)
    timed = [open_candidate(model_dir / manifest.file, inputs, c) for c in candidates()]
    measure(timed, single, batch, arguments.rounds)
    print(
        f"model {manifest.name}@{manifest.version}, {arguments.rounds} interleaved rounds, "
        f"onnxruntime {ort.__version__}, load average before {load_before}, after {load_average()}"
    )
    print(table(timed))


if __name__ == "__main__":
    main()
