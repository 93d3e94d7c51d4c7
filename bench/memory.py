"""``python -m bench.memory``: the service's peak memory under concurrent long uploads.

Starts ``python -m service`` (as the benchmark does: our models, one ONNX thread, the embedded
queue without workers, plus any ``--service-env``), then sends one clip of ``--duration-s``
seconds (real RAVDESS speech, as in the benchmark) to ``POST /predict`` at each concurrency in
turn, after an untimed warm-up round, and reads the server's ``VmHWM`` (peak resident set since
start) and ``VmRSS`` after each. The peak only grows, so each row is the peak after that
concurrency and all before it. Memory is what this measures: CPU load on the machine changes
the time it takes, not those figures. Each row also gives the median request latency, and the
first row (concurrency 1) the service's median ``inference`` stage (its ``timing_ms``), to
compare settings run back to back (the benchmark's figures are the ones to quote for speed).
Writes JSON to ``--out`` and prints a table.

Example (what docs/benchmark.md, "Memory under long uploads", ran)::

    python -m bench.memory --service-env SER_MAX_CONCURRENT_REQUESTS=16 \\
        --service-env SER_MAX_QUEUED_REQUESTS=16 --out var/bench/memory.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.__main__ import parse_env
from bench.clips import make_clips
from bench.http_load import Upload, multipart_upload, new_client, run_load, warm_up
from bench.process_memory import read_memory
from bench.run import REPOSITORY_ROOT, default_data_dir
from bench.server import RunningServer, start_server, stop_server

READY_TIMEOUT_S = 120.0
CASE_BUDGET_S = 600.0


async def _drive(
    server: RunningServer, upload: Upload, concurrencies: list[int], requests_per_stream: int
) -> list[dict[str, Any]]:
    rows = []
    async with new_client(server.base_url, max(concurrencies)) as client:
        for concurrency in concurrencies:
            await warm_up(client, "/predict", upload, concurrency)
            result = await run_load(
                client,
                "/predict",
                upload,
                concurrency,
                concurrency * requests_per_stream,
                CASE_BUDGET_S,
            )
            memory = read_memory(server.process.pid)
            rows.append(
                {
                    "concurrency": concurrency,
                    "requests": result.requests,
                    "ok": result.ok,
                    "errors": result.errors,
                    "memory_mib": asdict(memory) if memory else None,
                    "latency_median_ms": result.latency.median_ms if result.latency else None,
                    "inference_median_ms": result.server_timing_ms.get("inference"),
                }
            )
    return rows


def measure(
    models_dir: Path,
    data_dir: Path,
    duration_s: float,
    concurrencies: list[int],
    requests_per_stream: int,
    service_env: dict[str, str],
    scratch: Path,
) -> dict[str, Any]:
    """Start the service, drive it at each concurrency, stop it; the figures as a dict."""
    clip = make_clips(data_dir, {duration_s: 1})[duration_s][0]
    upload = multipart_upload(clip.flac_bytes(), "clip.flac", duration_s)
    server = start_server(models_dir, 1, scratch, READY_TIMEOUT_S, service_env)
    try:
        ready = read_memory(server.process.pid)
        rows = asyncio.run(_drive(server, upload, concurrencies, requests_per_stream))
    finally:
        stop_server(server)
    return {
        "duration_s": duration_s,
        "service_env": service_env,
        "ready_memory_mib": asdict(ready) if ready else None,
        "cases": rows,
    }


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table (peak and current RSS after each concurrency)."""
    lines = [
        f"{report['duration_s']:g} s clips, service env {report['service_env'] or '{}'}; "
        f"ready: {_mib(report['ready_memory_mib'], 'peak_rss_mib')} MiB",
        "",
        "| concurrency | ok / sent | peak RSS MiB | RSS MiB | latency median ms | "
        "inference median ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["cases"]:
        memory = row["memory_mib"]
        lines.append(
            f"| {row['concurrency']} | {row['ok']} / {row['requests']} | "
            f"{_mib(memory, 'peak_rss_mib')} | {_mib(memory, 'rss_mib')} | "
            f"{_ms(row.get('latency_median_ms'))} | {_ms(row.get('inference_median_ms'))} | "
            f"{row['errors'] or '-'} |"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _mib(memory: dict[str, float] | None, key: str) -> str:
    return "-" if memory is None else f"{memory[key]:.0f}"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, measure, write the JSON and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated, in order")
    parser.add_argument(
        "--requests-per-stream", type=int, default=2, help="timed requests per concurrent stream"
    )
    parser.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "var/bench/memory.json")
    args = parser.parse_args(argv)
    report = measure(
        args.models_dir,
        args.data_dir,
        args.duration_s,
        [int(c) for c in args.concurrency.split(",") if c],
        args.requests_per_stream,
        parse_env(args.service_env),
        args.out.parent / "memory-scratch",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()
