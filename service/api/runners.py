"""The API's way to its models: one micro-batcher per model, closed when the app stops."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import multiprocess

from service.config import Settings
from service.inference.batcher import MicroBatcher
from service.inference.batching import DirectRunner, SegmentRunner
from service.inference.registry import ModelRegistry
from service.metrics import ServiceMetrics, multiprocess_dir

MILLISECONDS_PER_S = 1000.0


def build_runners(
    registry: ModelRegistry, settings: Settings, metrics: ServiceMetrics
) -> dict[str, SegmentRunner]:
    """A runner per ``name@version``: a :class:`MicroBatcher`, or with ``SER_BATCH_WAIT_MS=0``
    the model called directly by each request's thread."""
    runners: dict[str, SegmentRunner] = {}
    for model in registry:
        if settings.batch_wait_ms == 0:
            runners[model.key] = DirectRunner(
                model, settings.max_batch_segments, settings.max_batch_audio_s
            )
            continue
        observer = metrics.inference.observer((model.manifest.name, model.manifest.version))
        wait_s = settings.batch_wait_ms / MILLISECONDS_PER_S
        runners[model.key] = MicroBatcher(
            model, settings.max_batch_segments, wait_s, observer, settings.max_batch_audio_s
        )
    return runners


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown: let the batchers finish what is queued, and in multi-process mode drop
    this worker's live gauges (``ser_http_requests_in_flight``) from the shared files."""
    yield
    runners: Mapping[str, SegmentRunner] = getattr(app.state, "runners", {})
    for runner in runners.values():
        if isinstance(runner, MicroBatcher):
            runner.close()
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
