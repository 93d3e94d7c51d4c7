"""``python -m bench.load_probe MODELS_DIR THREADS``: the model registry's load time alone.

Runs in a fresh process (the benchmark starts it) and prints one JSON object: time to import
the service's inference code, time of ``load_registry`` (every model: hash, session, checks,
dry run), time to import the rest of the app afterwards, and the process's peak resident
memory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

NS_PER_MS = 1_000_000


def main(argv: list[str]) -> None:
    """Load every model of ``argv[0]`` with ``argv[1]`` intra-op threads; print the figures."""
    models_dir, threads = Path(argv[0]), int(argv[1])
    start_ns = time.perf_counter_ns()
    from service.inference.registry import load_registry

    imported_ns = time.perf_counter_ns()
    registry = load_registry(models_dir, None, threads)
    loaded_ns = time.perf_counter_ns()
    import service.api.app  # noqa: F401  (the rest of the app: routes, explanations, jobs)

    app_ns = time.perf_counter_ns()
    from bench.process_memory import read_memory

    memory = read_memory(os.getpid())
    print(
        json.dumps(
            {
                "import_ms": (imported_ns - start_ns) / NS_PER_MS,
                "registry_load_ms": (loaded_ns - imported_ns) / NS_PER_MS,
                "app_import_ms": (app_ns - loaded_ns) / NS_PER_MS,
                "models": [model.key for model in registry],
                "peak_rss_mib": memory.peak_rss_mib if memory else None,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
