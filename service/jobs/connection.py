"""Redis connections for the API and the workers, and the one place Redis errors become 503s."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from service.errors import QueueUnavailable

HEALTH_CHECK_INTERVAL_S = 15


def connect(url: str, timeout_s: float | None, retries: int | None = 1) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``); connects lazily.

    ``timeout_s`` bounds connecting and every command (``None``: no command timeout, which RQ
    workers need for their blocking dequeue; RQ then sets its own). ``retries`` after a
    connection error, 50-200 ms apart: one rides over a connection dropped by a Redis restart
    without making an outage slow to report; ``None`` keeps redis-py's default (3, up to 10 s
    apart), which workers use. Responses stay bytes, as RQ requires.
    """
    retry = None if retries is None else Retry(ExponentialBackoff(cap=0.2, base=0.05), retries)
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout_s if timeout_s is not None else 5.0,
        socket_timeout=timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        **({} if retry is None else {"retry": retry}),
    )


def redact(url: str) -> str:
    """``url`` without its password, for logs, ``/readyz`` and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, ""))


@contextmanager
def queue_errors(url: str | None) -> Iterator[None]:
    """Turn "Redis cannot be reached" (refused, timed out, still loading) into ``QueueUnavailable``.

    Raises:
        QueueUnavailable: with the redacted URL and what went wrong.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        where = redact(url) if url else "(not configured)"
        raise QueueUnavailable(
            f"the batch-job queue at {where} cannot be reached ({type(exc).__name__}: "
            f"{str(exc)[:200]}); POST /predict still works; retry the job request later"
        ) from exc


def not_configured() -> QueueUnavailable:
    return QueueUnavailable(
        "batch jobs are not configured on this server (SER_REDIS_URL is unset and the embedded "
        "queue was not started); POST /predict still works"
    )
