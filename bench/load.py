"""``python -m bench.load``: a bounded load test of ``POST /predict`` at and above capacity.

Starts the real service (``python -m service``, the shipped models, the default model) on a
loopback port with its admission limits, warms it up, then drives it with real RAVDESS clips:
one phase with as many clients as slots (at capacity), one with ``overload_factor`` times
slots plus queue places (above capacity). Reports per phase the requests sent, status and
problem-code counts, unexpected 5xx (anything but the deliberate ``503 overloaded`` /
``request_timeout``, must be 0), latency percentiles of admitted requests, and the service's
resident memory after warm-up and at the end. Exit status 1 when an unexpected 5xx occurred.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import soundfile

from bench.clips import ravdess_files
from bench.http_load import Upload, multipart_upload
from bench.load_client import PhaseResult, run_phase
from bench.process_memory import child_pids, read_memory
from bench.run import REPOSITORY_ROOT, default_data_dir, log
from bench.server import start_server, stop_server

SERVER_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LoadPlan:
    """Durations in seconds and the service's admission limits for one run."""

    warmup_s: float
    phase_s: float
    slots: int
    queued: int
    queue_timeout_s: float
    overload_factor: int
    clips: int

    @property
    def overload_clients(self) -> int:
        return self.overload_factor * (self.slots + self.queued)

    def service_env(self) -> dict[str, str]:
        return {
            "SER_MAX_CONCURRENT_REQUESTS": str(self.slots),
            "SER_MAX_QUEUED_REQUESTS": str(self.queued),
            "SER_QUEUE_TIMEOUT_S": str(self.queue_timeout_s),
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 1 minute in all")
    parser.add_argument("--phase-s", type=float, help="seconds per phase (default 80; quick 25)")
    parser.add_argument("--warmup-s", type=float, help="seconds of warm-up (default 20; quick 10)")
    parser.add_argument("--slots", type=int, default=4, help="SER_MAX_CONCURRENT_REQUESTS")
    parser.add_argument("--queued", type=int, default=8, help="SER_MAX_QUEUED_REQUESTS")
    parser.add_argument("--queue-timeout-s", type=float, default=10.0, help="SER_QUEUE_TIMEOUT_S")
    parser.add_argument("--overload-factor", type=int, default=2)
    parser.add_argument("--clips", type=int, default=48, help="distinct RAVDESS clips sent")
    parser.add_argument("--models-dir", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def plan_from(args: argparse.Namespace) -> LoadPlan:
    return LoadPlan(
        warmup_s=args.warmup_s or (10.0 if args.quick else 20.0),
        phase_s=args.phase_s or (25.0 if args.quick else 80.0),
        slots=args.slots,
        queued=args.queued,
        queue_timeout_s=args.queue_timeout_s,
        overload_factor=args.overload_factor,
        clips=args.clips,
    )


def speech_uploads(data_dir: Path, count: int) -> list[Upload]:
    """``count`` RAVDESS FLAC files spread over the corpus, as ready multipart bodies."""
    files = ravdess_files(data_dir)
    step = max(1, len(files) // count)
    chosen = files[::step][:count]
    return [
        multipart_upload(path.read_bytes(), path.name, soundfile.info(path).duration)
        for path in chosen
    ]


def service_rss_mib(pid: int) -> float:
    """Resident memory of the service process and its children, Valkey excepted, in MiB."""
    total_mib = 0.0
    for process_id in [pid, *child_pids(pid)]:
        if _is_valkey(process_id):
            continue
        memory = read_memory(process_id)
        total_mib += memory.rss_mib if memory is not None else 0.0
    return total_mib


def _is_valkey(pid: int) -> bool:
    try:
        return b"valkey" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def drive(base_url: str, pid: int, plan: LoadPlan, uploads: list[Upload]) -> dict[str, Any]:
    """Warm-up, at-capacity and above-capacity phases; memory after warm-up and at the end."""
    log(f"warm-up: {plan.slots} clients for {plan.warmup_s:g} s")
    warmup = await run_phase(base_url, "warm-up", uploads, plan.slots, plan.warmup_s)
    rss_after_warmup_mib = service_rss_mib(pid)
    phases: list[PhaseResult] = [warmup]
    for name, clients in (("at capacity", plan.slots), ("above capacity", plan.overload_clients)):
        log(f"{name}: {clients} clients for {plan.phase_s:g} s")
        phases.append(await run_phase(base_url, name, uploads, clients, plan.phase_s))
    rss_end_mib = service_rss_mib(pid)
    return {
        "plan": asdict(plan),
        "phases": [asdict(phase) for phase in phases],
        "rss_after_warmup_mib": round(rss_after_warmup_mib, 1),
        "rss_end_mib": round(rss_end_mib, 1),
        "rss_growth_mib": round(rss_end_mib - rss_after_warmup_mib, 1),
        "unexpected_5xx": sum(phase.unexpected_5xx for phase in phases),
    }


def render(figures: dict[str, Any]) -> str:
    """A Markdown table of the phases and a line on memory."""
    lines = [
        "| phase | clients | s | sent | statuses | codes | unexpected 5xx | admitted/s "
        "| p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in figures["phases"]:
        latency = phase["admitted_latency"] or {}
        lines.append(
            f"| {phase['name']} | {phase['clients']} | {phase['wall_s']:.0f} | {phase['sent']} "
            f"| {_counts(phase['statuses'])} | {_counts(phase['codes'])} "
            f"| {phase['unexpected_5xx']} | {phase['admitted_per_s']:.1f} "
            f"| {latency.get('median_ms', 0):.0f} | {latency.get('p95_ms', 0):.0f} "
            f"| {latency.get('p99_ms', 0):.0f} |"
        )
    lines.append(
        f"\nService RSS: {figures['rss_after_warmup_mib']} MiB after warm-up, "
        f"{figures['rss_end_mib']} MiB at the end (growth {figures['rss_growth_mib']} MiB)."
    )
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in counts.items()) or "-"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    plan = plan_from(args)
    uploads = speech_uploads(args.data_dir, plan.clips)
    with tempfile.TemporaryDirectory(prefix="ser-load-") as scratch:
        server = start_server(
            args.models_dir, 1, Path(scratch), SERVER_START_TIMEOUT_S, plan.service_env()
        )
        try:
            figures = asyncio.run(drive(server.base_url, server.process.pid, plan, uploads))
        finally:
            stop_server(server)
    print(render(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if figures["unexpected_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
