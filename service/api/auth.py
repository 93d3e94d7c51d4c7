"""Optional API keys: with ``SER_API_KEYS`` set, every route but the probes needs a key.

The key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. It is compared with
:func:`hmac.compare_digest` against every configured key (no early exit, so the time taken
does not say which key or how much of it matched). Keys are never logged: the access log
records neither headers nor keys, and the settings hold them as ``SecretStr``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Final

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.problems import problem_response
from service.errors import Unauthorized
from service.metrics import ServiceMetrics

OPEN_PATHS: Final = frozenset({"/healthz", "/readyz"})
"""Liveness and readiness probes answer without a key (orchestrators call them bare)."""
API_KEY_HEADER: Final = "X-API-Key"
BEARER_PREFIX: Final = "bearer "
WWW_AUTHENTICATE: Final = 'Bearer realm="ser", charset="UTF-8"'


def presented_key(headers: Headers) -> str | None:
    """The key of ``Authorization: Bearer`` or else ``X-API-Key``; ``None`` when neither."""
    authorization = headers.get("authorization", "")
    if authorization[: len(BEARER_PREFIX)].lower() == BEARER_PREFIX:
        return authorization[len(BEARER_PREFIX) :].strip()
    return headers.get(API_KEY_HEADER)


def key_matches(candidate: str, keys: Sequence[bytes]) -> bool:
    """Whether ``candidate`` equals one of ``keys``, comparing against all of them."""
    given = candidate.encode("utf-8", errors="replace")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    return matched


class ApiKeyMiddleware:
    """Refuses requests without a valid key with ``401 unauthorized`` and ``WWW-Authenticate``."""

    def __init__(self, app: ASGIApp, keys: Sequence[SecretStr], metrics: ServiceMetrics) -> None:
        self.app = app
        self.keys = [key.get_secret_value().encode("utf-8") for key in keys]
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        candidate = presented_key(Headers(scope=scope))
        if candidate is not None and key_matches(candidate, self.keys):
            await self.app(scope, receive, send)
            return
        error = _unauthorized(candidate is None)
        self.metrics.input_errors_total.labels(code=error.code).inc()
        response = problem_response(error, scope["path"], {"WWW-Authenticate": WWW_AUTHENTICATE})
        await response(scope, receive, send)


def _unauthorized(missing: bool) -> Unauthorized:
    if missing:
        return Unauthorized(
            f"this service needs an API key: send 'Authorization: Bearer <key>' or "
            f"'{API_KEY_HEADER}: <key>'"
        )
    return Unauthorized("the API key is not valid; check it with the service's operator")
