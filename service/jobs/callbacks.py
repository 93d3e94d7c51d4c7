"""Job-end callbacks: which URLs are allowed, how bodies are signed, and delivery with retries.

A callback goes only to a host on ``SER_JOB_CALLBACK_HOSTS`` (exact, case-insensitive host
names; no user-info, no redirects followed), so the service cannot be used to reach arbitrary
internal addresses. The body is the job's status document; the header
``X-SER-Signature: sha256=<hex>`` is HMAC-SHA256 of the exact body bytes with
``SER_JOB_CALLBACK_SECRET``. Receivers recompute it and compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httpx

from service import __version__
from service.errors import CallbackNotAllowed, InvalidParameter

SIGNATURE_HEADER: Final = "X-SER-Signature"
JOB_ID_HEADER: Final = "X-SER-Job-ID"
MAX_URL_CHARS: Final = 2048
BACKOFF_START_S: Final = 0.5
BACKOFF_MAX_S: Final = 8.0
_log = logging.getLogger(__name__)


def check_callback_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """The URL when it may be called back, else raise.

    Raises:
        InvalidParameter: not an absolute http(s) URL, too long, or with user-info.
        CallbackNotAllowed: callbacks are off, or the host is not on the allow-list.
    """
    parts = urlsplit(url)
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"callback_url must be an absolute http:// or https:// URL of at most {MAX_URL_CHARS} "
            "characters"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidParameter("callback_url must not carry a user name or password")
    try:
        _ = parts.port
    except ValueError as exc:
        raise InvalidParameter(f"callback_url has an invalid port: {exc}") from exc
    if not allowed_hosts:
        raise CallbackNotAllowed(
            "callbacks are off on this server (SER_JOB_CALLBACK_HOSTS is empty); poll "
            "GET /jobs/{id} instead"
        )
    if parts.hostname.lower() not in allowed_hosts:
        raise CallbackNotAllowed(
            f"host '{parts.hostname[:100]}' is not on the callback allow-list "
            "(SER_JOB_CALLBACK_HOSTS); ask the operator to add it or poll GET /jobs/{id}"
        )
    return url


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, secret: str, header_value: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(body, secret), header_value)


@dataclass(frozen=True)
class Delivery:
    """How a callback ended: ``delivered`` (a 2xx answer) or ``failed``."""

    state: str
    attempts: int
    status: int | None


def deliver(
    url: str, job_id: str, body: bytes, secret: str, timeout_s: float, attempts: int
) -> Delivery:
    """POST ``body`` to ``url``, signed; retry on network errors, 408, 429 and 5xx with backoff."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"ser-service/{__version__}",
        SIGNATURE_HEADER: sign(body, secret),
        JOB_ID_HEADER: job_id,
    }
    status: int | None = None
    delay_s = BACKOFF_START_S
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        for attempt in range(1, attempts + 1):
            status = _post_once(client, url, body, headers)
            if status is not None and 200 <= status < 300:
                return Delivery("delivered", attempt, status)
            if status is not None and not _retryable(status):
                return Delivery("failed", attempt, status)
            if attempt < attempts:
                time.sleep(delay_s)
                delay_s = min(delay_s * 2.0, BACKOFF_MAX_S)
    return Delivery("failed", attempts, status)


def delivery_time_limit_s(timeout_s: float, attempts: int) -> int:
    """An upper bound of :func:`deliver`'s running time, for the RQ job's timeout."""
    backoff_s = sum(min(BACKOFF_START_S * 2.0**n, BACKOFF_MAX_S) for n in range(attempts))
    return int(attempts * timeout_s + backoff_s) + 10


def _post_once(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> int | None:
    try:
        return client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError as exc:
        _log.warning("callback to %s failed: %s", url, exc)
        return None


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500
