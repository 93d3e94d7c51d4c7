"""End-to-end HTTP load on the running service: latency percentiles and throughput.

Requests are multipart uploads of one FLAC clip, encoded once and sent as raw bytes (the
client's own work per request stays small: it shares the machine with the server). Each of
``concurrency`` workers sends its next request as soon as its previous answer arrived, until
the request count or the time budget is reached.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from bench.timing import NS_PER_MS, NS_PER_S, TimingStats, summarise_ms

BOUNDARY = "ser-bench-boundary-7f3a9c"
REQUEST_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Upload:
    """A ready multipart body with the ``file`` field, and the audio's duration."""

    body: bytes
    content_type: str
    duration_s: float


def multipart_upload(audio: bytes, filename: str, duration_s: float) -> Upload:
    """The body ``curl -F file=@<filename>`` would send."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/flac\r\n\r\n"
    ).encode()
    body = head + audio + f"\r\n--{BOUNDARY}--\r\n".encode()
    return Upload(body, f"multipart/form-data; boundary={BOUNDARY}", duration_s)


@dataclass(frozen=True)
class LoadResult:
    """One (route, clip, concurrency) case.

    ``latency`` covers successful (200) answers only; ``throughput_rps`` is successful
    answers per wall-clock second; ``audio_s_per_s`` is seconds of audio analysed per second;
    ``server_timing_ms`` is the median of the service's own ``timing_ms`` per stage.
    """

    route: str
    duration_s: float
    concurrency: int
    requests: int
    ok: int
    errors: dict[str, int]
    wall_s: float
    latency: TimingStats | None
    throughput_rps: float
    audio_s_per_s: float
    server_timing_ms: dict[str, float]


@dataclass
class _LoadState:
    max_requests: int
    deadline_ns: int
    issued: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    timings: list[dict[str, float]] = field(default_factory=list)

    def take(self) -> bool:
        if self.issued >= self.max_requests or time.perf_counter_ns() > self.deadline_ns:
            return False
        self.issued += 1
        return True


async def _send(client: httpx.AsyncClient, route: str, upload: Upload) -> httpx.Response:
    return await client.post(
        route, content=upload.body, headers={"content-type": upload.content_type}
    )


async def _worker(
    client: httpx.AsyncClient, route: str, upload: Upload, state: _LoadState, parse: bool
) -> None:
    while state.take():
        start_ns = time.perf_counter_ns()
        try:
            response = await _send(client, route, upload)
            status = str(response.status_code)
        except httpx.HTTPError as exc:
            response, status = None, type(exc).__name__
        state.statuses[status] += 1
        if response is not None and response.status_code == 200:
            state.latencies_ms.append((time.perf_counter_ns() - start_ns) / NS_PER_MS)
            if parse:
                state.timings.append(_timing_of(response.json()))


def _timing_of(payload: Any) -> dict[str, float]:
    """The answer's ``timing_ms`` stages, and ``explanation.timing_ms`` ones prefixed."""
    if not isinstance(payload, dict):
        return {}
    stages = _numbers(payload.get("timing_ms"))
    explanation = payload.get("explanation")
    if isinstance(explanation, dict):
        extra = _numbers(explanation.get("timing_ms"))
        stages.update({f"explanation.{stage}": ms for stage, ms in extra.items()})
    return stages


def _numbers(mapping: Any) -> dict[str, float]:
    if not isinstance(mapping, dict):
        return {}
    return {str(k): float(v) for k, v in mapping.items() if isinstance(v, int | float)}


def _median_timing(timings: list[dict[str, float]]) -> dict[str, float]:
    stages = sorted({stage for timing in timings for stage in timing})
    return {
        stage: float(np.median([timing[stage] for timing in timings if stage in timing]))
        for stage in stages
    }


async def run_load(
    client: httpx.AsyncClient,
    route: str,
    upload: Upload,
    concurrency: int,
    max_requests: int,
    budget_s: float,
) -> LoadResult:
    """Drive ``route`` with ``concurrency`` workers; the service's stage timings are read
    from the answers at concurrency 1 only (parsing costs client CPU)."""
    state = _LoadState(max_requests, time.perf_counter_ns() + int(budget_s * NS_PER_S))
    parse = concurrency == 1
    start_ns = time.perf_counter_ns()
    workers = [_worker(client, route, upload, state, parse) for _ in range(concurrency)]
    await asyncio.gather(*workers)
    wall_s = (time.perf_counter_ns() - start_ns) / NS_PER_S
    ok = state.statuses.get("200", 0)
    return LoadResult(
        route=route,
        duration_s=upload.duration_s,
        concurrency=concurrency,
        requests=state.issued,
        ok=ok,
        errors={status: n for status, n in state.statuses.items() if status != "200"},
        wall_s=wall_s,
        latency=summarise_ms(state.latencies_ms) if state.latencies_ms else None,
        throughput_rps=ok / wall_s if wall_s > 0 else 0.0,
        audio_s_per_s=ok * upload.duration_s / wall_s if wall_s > 0 else 0.0,
        server_timing_ms=_median_timing(state.timings),
    )


async def warm_up(client: httpx.AsyncClient, route: str, upload: Upload, concurrency: int) -> None:
    """One untimed round of ``concurrency`` parallel requests (fills the server's threads)."""
    await asyncio.gather(*(_send(client, route, upload) for _ in range(concurrency)))


async def route_exists(client: httpx.AsyncClient, path: str, method: str = "post") -> bool:
    """Whether the service's OpenAPI document lists ``method path``."""
    document = (await client.get("/openapi.json")).json()
    return method in document.get("paths", {}).get(path, {})


def new_client(base_url: str, max_connections: int) -> httpx.AsyncClient:
    """An async client with enough connections for the highest concurrency."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )
