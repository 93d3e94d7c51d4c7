"""Admission control of the analysis routes: a concurrency limit, a bounded wait and a deadline.

At most ``max_in_flight`` analysis requests run at once; up to ``max_queued`` more wait (first
come, first served) for at most ``queue_timeout_s``. Beyond that the answer is
``503 overloaded`` with ``Retry-After`` at once, so a flood is refused cheaply instead of
queueing without bound. An admitted request that runs longer than ``request_timeout_s`` is
answered ``503 request_timeout``.

CPU work already started in a worker thread cannot be pre-empted in Python: after a timeout
its task is cancelled (it stops at the next ``await``) and the slot is released only when that
work has ended, so abandoned work still counts against the limit and never piles up. The work
itself is bounded by the input limits (``SER_MAX_UPLOAD_BYTES``, ``SER_MAX_DURATION_S``:
decoding stops at the duration limit, inference runs on at most that much audio).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem_response
from service.errors import Overloaded, RequestTimedOut, ServiceError
from service.metrics import AdmissionMetrics

LIMITED_ROUTES: Final = frozenset({("POST", "/predict"), ("POST", "/explain"), ("POST", "/jobs")})
"""``(method, path)`` of the analysis routes; health, metrics and job reads are never limited."""


@dataclass(frozen=True)
class AdmissionLimits:
    """``max_in_flight`` slots, ``max_queued`` waiting places, both timeouts in seconds."""

    max_in_flight: int
    max_queued: int
    queue_timeout_s: float
    request_timeout_s: float

    @property
    def retry_after_s(self) -> int:
        """Whole seconds a refused client should wait: the queue timeout, rounded up."""
        return max(1, math.ceil(self.queue_timeout_s))


class AdmissionGate:
    """Counts slots and hands a freed slot to the longest waiter (loop-agnostic futures)."""

    def __init__(self, limits: AdmissionLimits, metrics: AdmissionMetrics) -> None:
        self.limits = limits
        self.metrics = metrics
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Take a slot, waiting in line if needed.

        Raises:
            Overloaded: the wait queue is full, or no slot freed within ``queue_timeout_s``.
        """
        if self.in_flight < self.limits.max_in_flight and not self._waiters:
            self._take()
            return
        if len(self._waiters) >= self.limits.max_queued:
            raise self._refuse("queue_full", "every slot is busy and the wait queue is full")
        await self._wait_in_line()

    def release(self) -> None:
        """Hand the slot to the first live waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            self.metrics.queued.set(len(self._waiters))
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: in_flight is unchanged
                return
        self.in_flight -= 1
        self.metrics.in_flight.set(self.in_flight)

    def _take(self) -> None:
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)

    async def _wait_in_line(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.metrics.queued.set(len(self._waiters))
        try:
            await asyncio.wait([waiter], timeout=self.limits.queue_timeout_s)
        except asyncio.CancelledError:
            self._leave_line(waiter)
            raise
        if not waiter.done():
            self._leave_line(waiter)
            raise self._refuse("queue_timeout", "no slot became free in time")

    def _leave_line(self, waiter: asyncio.Future[None]) -> None:
        """Give up waiting; a slot handed over meanwhile is passed on."""
        if waiter.done():
            self.release()
            return
        waiter.cancel()
        self._waiters.remove(waiter)
        self.metrics.queued.set(len(self._waiters))

    def _refuse(self, reason: str, why: str) -> Overloaded:
        self.metrics.rejected_total.labels(reason=reason).inc()
        limits = self.limits
        return Overloaded(
            f"{why} ({limits.max_in_flight} requests at once, {limits.max_queued} waiting at "
            f"most; SER_MAX_CONCURRENT_REQUESTS, SER_MAX_QUEUED_REQUESTS): retry after "
            f"{limits.retry_after_s} s"
        )


class AdmissionMiddleware:
    """Applies an :class:`AdmissionGate` and the request deadline to :data:`LIMITED_ROUTES`."""

    def __init__(self, app: ASGIApp, limits: AdmissionLimits, metrics: AdmissionMetrics) -> None:
        self.app = app
        self.gate = AdmissionGate(limits, metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in LIMITED_ROUTES:
            await self.app(scope, receive, send)
            return
        try:
            await self.gate.acquire()
        except Overloaded as exc:
            await self._refuse(exc, scope, receive, send)
            return
        await self._run_admitted(scope, receive, send)

    async def _run_admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route as a task holding the slot until it ends; answer 503 at the deadline."""
        started = [False]
        timed_out = [False]

        async def guarded_send(message: Message) -> None:
            if timed_out[0]:
                return  # the client already has its 503; late output of the route is dropped
            started[0] = started[0] or message["type"] == "http.response.start"
            await send(message)

        task: asyncio.Task[None] = asyncio.create_task(_run(self.app, scope, receive, guarded_send))
        task.add_done_callback(self._route_ended)
        try:
            done, _ = await asyncio.wait([task], timeout=self.gate.limits.request_timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done or started[0]:  # an answer already on its way is let through
            await task  # re-raises a route's exception for the outer middleware
            return
        timed_out[0] = True
        task.cancel()
        self.gate.metrics.timeouts_total.inc()
        await self._refuse(self._timeout_error(), scope, receive, send)

    def _route_ended(self, task: asyncio.Task[None]) -> None:
        self.gate.release()
        if not task.cancelled():
            task.exception()  # retrieved here too, so a late failure is never logged as lost

    def _timeout_error(self) -> RequestTimedOut:
        return RequestTimedOut(
            f"the request took longer than {self.gate.limits.request_timeout_s:g} s "
            "(SER_REQUEST_TIMEOUT_S): send shorter audio, or retry later"
        )

    async def _refuse(
        self, error: ServiceError, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = {"Retry-After": str(self.gate.limits.retry_after_s)}
        await problem_response(error, scope.get("path"), headers)(scope, receive, send)


async def _run(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    await app(scope, receive, send)
