"""``python -m service``: serve the API with uvicorn on ``SER_HOST``:``SER_PORT``."""

from __future__ import annotations

import uvicorn

from service.config import get_settings
from service.logs import configure_logging

GRACEFUL_SHUTDOWN_S = 30


def main() -> None:
    """Configure logging and serve; SIGTERM/SIGINT finish in-flight requests first."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
