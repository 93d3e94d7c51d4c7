"""A closed-loop asyncio/httpx load generator for ``POST /predict`` with overload accounting.

Each of ``clients`` virtual users sends a real speech clip (cycling through the given uploads),
waits for the answer and sends the next one; after a ``503 overloaded`` it pauses
``refused_pause_s`` (shorter than the ``Retry-After`` the service asks for, to keep the
pressure on). Every answer is classified: admitted (200), deliberate 503 (``overloaded`` or
``request_timeout``), other 4xx, and *unexpected* (any other 5xx or a transport error).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.http_load import Upload
from bench.timing import NS_PER_MS, NS_PER_S, TimingStats, summarise_ms

DELIBERATE_503_CODES = frozenset({"overloaded", "request_timeout"})


@dataclass
class PhaseTally:
    """What one phase saw: status counts, problem codes, admitted latencies in milliseconds."""

    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    admitted_ms: list[float] = field(default_factory=list)
    unexpected: int = 0

    def record(self, response: httpx.Response | None, error: str, elapsed_ms: float) -> None:
        """Count one answer (``response`` is ``None`` after a transport ``error``)."""
        if response is None:
            self.statuses[error] += 1
            self.unexpected += 1
            return
        self.statuses[str(response.status_code)] += 1
        if response.status_code == 200:
            self.admitted_ms.append(elapsed_ms)
            return
        code = _problem_code(response)
        self.codes[code] += 1
        if response.status_code >= 500 and not (
            response.status_code == 503 and code in DELIBERATE_503_CODES
        ):
            self.unexpected += 1


@dataclass(frozen=True)
class PhaseResult:
    """One load phase: ``clients`` concurrent users for ``wall_s`` seconds."""

    name: str
    clients: int
    wall_s: float
    sent: int
    statuses: dict[str, int]
    codes: dict[str, int]
    unexpected_5xx: int
    admitted_latency: TimingStats | None
    admitted_per_s: float


def _problem_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", "?"))
    except ValueError:
        return "not-json"


async def _user(
    client: httpx.AsyncClient,
    uploads: list[Upload],
    offset: int,
    deadline_ns: int,
    tally: PhaseTally,
    refused_pause_s: float,
) -> None:
    index = offset
    while time.perf_counter_ns() < deadline_ns:
        upload = uploads[index % len(uploads)]
        index += 1
        start_ns = time.perf_counter_ns()
        response: httpx.Response | None = None
        error = ""
        try:
            response = await client.post(
                "/predict", content=upload.body, headers={"content-type": upload.content_type}
            )
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        tally.record(response, error, (time.perf_counter_ns() - start_ns) / NS_PER_MS)
        if response is not None and response.status_code == 503:
            await asyncio.sleep(refused_pause_s)


async def run_phase(
    base_url: str,
    name: str,
    uploads: list[Upload],
    clients: int,
    duration_s: float,
    refused_pause_s: float = 0.1,
) -> PhaseResult:
    """Drive ``/predict`` with ``clients`` users for ``duration_s``; answers still in flight at
    the end are awaited and counted."""
    tally = PhaseTally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start_ns = time.perf_counter_ns()
    deadline_ns = start_ns + int(duration_s * NS_PER_S)
    async with httpx.AsyncClient(base_url=base_url, timeout=300.0, limits=limits) as client:
        users = [
            _user(client, uploads, n * 7, deadline_ns, tally, refused_pause_s)
            for n in range(clients)
        ]
        await asyncio.gather(*users)
    wall_s = (time.perf_counter_ns() - start_ns) / NS_PER_S
    admitted = tally.admitted_ms
    return PhaseResult(
        name=name,
        clients=clients,
        wall_s=wall_s,
        sent=sum(tally.statuses.values()),
        statuses=dict(sorted(tally.statuses.items())),
        codes=dict(sorted(tally.codes.items())),
        unexpected_5xx=tally.unexpected,
        admitted_latency=summarise_ms(admitted) if admitted else None,
        admitted_per_s=len(admitted) / wall_s if wall_s > 0 else 0.0,
    )
