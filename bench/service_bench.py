"""The service under load: start it, time /predict and /explain, read its memory, stop it."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clips import Clip
from bench.http_load import (
    LoadResult,
    multipart_upload,
    new_client,
    route_exists,
    run_load,
    warm_up,
)
from bench.modes import HttpPlan
from bench.process_memory import Memory, children_rss_mib, read_memory
from bench.server import RunningServer, models_served, registry_load, start_server, stop_server

EXPLAIN_DURATION_S = 3.0


@dataclass(frozen=True)
class ServiceFigures:
    """Everything measured on the running service.

    ``ready_ms``: from spawning ``python -m service`` to the first ``/readyz`` 200;
    ``registry_load``: ``load_registry`` alone in a fresh process (``bench.load_probe``);
    ``memory_*``: the server process's resident memory when ready and after all the load
    (``peak_rss_mib`` is the high-water mark since start); ``memory_after_case``: the same
    after each case, in order (which case raised the peak); ``children_rss_mib``: processes
    it started (an embedded job queue), not counted in its own figure.
    """

    models_dir: str
    served: Any
    registry_load: dict[str, Any]
    ready_ms: float
    memory_at_ready: Memory | None
    memory_at_end: Memory | None
    memory_after_case: list[dict[str, Any]]
    children_rss_mib: float
    predict: list[LoadResult]
    explain: LoadResult | None
    explain_note: str | None
    exit_code: int | None


def measure_service(
    models_dir: Path,
    clips: dict[float, list[Clip]],
    plan: HttpPlan,
    threads: int,
    scratch: Path,
    extra_env: dict[str, str] | None = None,
) -> ServiceFigures:
    """Registry load in a fresh process, then the service under every case of ``plan``;
    ``extra_env`` (``SER_*`` settings to try) is added to the service's environment."""
    registry = registry_load(models_dir, threads)
    server = start_server(models_dir, threads, scratch, plan.ready_timeout_s, extra_env or {})
    try:
        at_ready = read_memory(server.process.pid)
        served = models_served(server.base_url)
        trace: list[dict[str, Any]] = []
        predict, explain, note = asyncio.run(_drive(server, clips, plan, trace))
        at_end = read_memory(server.process.pid)
        children_mib = children_rss_mib(server.process.pid)
    finally:
        exit_code = stop_server(server)
    return ServiceFigures(
        str(models_dir),
        served,
        registry,
        server.ready_ms,
        at_ready,
        at_end,
        trace,
        children_mib,
        predict,
        explain,
        note,
        exit_code,
    )


def _uploads(clips: dict[float, list[Clip]]) -> dict[float, Any]:
    return {
        duration_s: multipart_upload(rows[0].flac_bytes(), f"clip_{duration_s:g}s.flac", duration_s)
        for duration_s, rows in clips.items()
    }


async def _drive(
    server: RunningServer,
    clips: dict[float, list[Clip]],
    plan: HttpPlan,
    trace: list[dict[str, Any]],
) -> tuple[list[LoadResult], LoadResult | None, str | None]:
    uploads = _uploads(clips)
    async with new_client(server.base_url, max(plan.concurrencies)) as client:
        predict: list[LoadResult] = []
        for duration_s in sorted(uploads):
            for concurrency in plan.concurrencies:
                if concurrency == 1 or duration_s in plan.sweep_durations_s:
                    await warm_up(client, "/predict", uploads[duration_s], concurrency)
                    requests = plan.requests_by_concurrency[concurrency]
                    result = await run_load(
                        client,
                        "/predict",
                        uploads[duration_s],
                        concurrency,
                        requests,
                        plan.budget_s,
                    )
                    predict.append(result)
                    _after_case(result, server.process.pid, trace)
        if not await route_exists(client, "/explain"):
            return predict, None, "POST /explain does not exist in this build yet: not measured"
        if EXPLAIN_DURATION_S not in uploads:
            return predict, None, f"no {EXPLAIN_DURATION_S:g} s clip in this plan: not measured"
        upload = uploads[EXPLAIN_DURATION_S]
        await warm_up(client, "/explain", upload, 1)
        explain = await run_load(
            client, "/explain", upload, 1, plan.explain_requests, plan.budget_s
        )
        _after_case(explain, server.process.pid, trace)
        return predict, explain, None


def _after_case(result: LoadResult, pid: int, trace: list[dict[str, Any]]) -> None:
    memory = read_memory(pid)
    trace.append(
        {
            "route": result.route,
            "duration_s": result.duration_s,
            "concurrency": result.concurrency,
            "peak_rss_mib": memory.peak_rss_mib if memory else None,
            "rss_mib": memory.rss_mib if memory else None,
        }
    )
    _progress(result, memory)


def _progress(result: LoadResult, memory: Memory | None) -> None:
    p50 = f"{result.latency.median_ms:9.1f} ms p50" if result.latency else "no successful answer"
    peak = f"peak RSS {memory.peak_rss_mib:.0f} MiB" if memory else ""
    print(
        f"  {result.route:<9} {result.duration_s:>4.0f} s c{result.concurrency:<3} {p50} "
        f"{result.throughput_rps:7.2f} req/s ok {result.ok}/{result.requests} "
        f"{peak} {result.errors or ''}",
        file=sys.stderr,
        flush=True,
    )
