"""Pure ASGI middleware: request id, body-size limit while streaming, metrics, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem_response
from service.errors import PayloadTooLarge, ServiceError
from service.logs import request_id_var
from service.metrics import UNMATCHED_ROUTE, ServiceMetrics

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = logging.getLogger("service.access")


class RequestContextMiddleware:
    """Gives every HTTP request an id, a body-size limit, metrics and one access-log line.

    The request id is taken from ``X-Request-ID`` when it is a safe token (1-128 characters of
    letters, digits and ``._:-``), otherwise made fresh; it is returned in the same header.
    Bodies larger than ``max_body_bytes`` are refused with 413 from the ``Content-Length``
    header when declared, and otherwise as soon as the streamed bytes pass the limit.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = _request_id(headers)
        token = request_id_var.set(request_id)
        status = [500]
        start_s = time.perf_counter()

        response_started = [False]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status[0] = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        self.metrics.requests_in_flight.inc()
        try:
            await self._dispatch(scope, receive, send_with_id, headers)
        except Exception:
            _log.exception(
                "unhandled error on %s %s",
                scope["method"],
                scope.get("path"),
                extra={"request_id": request_id},
            )
            if response_started[0]:
                raise
            await problem_response(_internal_error(), scope.get("path"))(
                scope, receive, send_with_id
            )
        finally:
            self.metrics.requests_in_flight.dec()
            self._record(scope, status[0], time.perf_counter() - start_s)
            request_id_var.reset(token)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        declared_bytes = _declared_length(headers)
        if declared_bytes is not None and declared_bytes > self.max_body_bytes:
            response = problem_response(self._too_large(declared_bytes), scope.get("path"))
            await response(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        received_bytes = 0

        async def limited_receive() -> Message:
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.max_body_bytes:
                    raise self._too_large(received_bytes)
            return message

        return limited_receive

    def _too_large(self, size_bytes: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is at least {size_bytes} bytes; the limit is "
            f"{self.max_body_bytes} bytes (SER_MAX_UPLOAD_BYTES): compress the audio "
            "(FLAC, Opus) or send a shorter recording"
        )

    def _record(self, scope: Scope, status: int, duration_s: float) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
        method = scope["method"]
        self.metrics.requests_total.labels(route=route, method=method, status=str(status)).inc()
        self.metrics.request_duration_seconds.labels(route=route, method=method).observe(duration_s)
        _log.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_s * 1000.0, 2),
            },
        )


def _internal_error() -> ServiceError:
    return ServiceError("an internal error occurred; quote the request id when reporting it")


def _request_id(headers: Headers) -> str:
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None and _VALID_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None
