"""The app factory: settings, models, metrics, routes and error handling, wired once."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from service import __version__
from service.api.admission import AdmissionLimits, AdmissionMiddleware
from service.api.auth import ApiKeyMiddleware
from service.api.middleware import RequestContextMiddleware
from service.api.openapi_access import install_access_document
from service.api.problems import install_problem_handlers
from service.api.routes import explain, health, jobs, models, predict
from service.api.runners import build_runners, lifespan
from service.config import Settings, get_settings
from service.inference.registry import ModelRegistry, load_registry
from service.jobs.manager import JobManager
from service.metrics import JobQueueCollector, ServiceMetrics

_log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
    job_manager: JobManager | None = None,
) -> FastAPI:
    """Build the ASGI app; loads and validates every model before it returns.

    The job queue (``SER_REDIS_URL``) is connected lazily: Redis being down never stops start-up.

    Raises:
        ModelLoadError: a model breaks its contract (start-up stops; nothing is served).
    """
    settings = settings or get_settings()
    registry = registry or load_registry(
        settings.models_dir, settings.default_model, settings.onnx_intra_op_threads
    )
    metrics = ServiceMetrics()
    app = build_api(metrics)
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.jobs = job_manager or JobManager.from_settings(settings)
    metrics.register_collector(JobQueueCollector(app.state.jobs.snapshot))
    app.state.runners = build_runners(registry, settings, metrics)
    for model in registry:
        manifest = model.manifest
        metrics.model_info.labels(
            name=manifest.name,
            version=manifest.version,
            sha256=manifest.sha256,
            default=str(model is registry.default).lower(),
        ).set(1)
    _install_middleware(app, settings, metrics)
    _log.info("service ready", extra={"models": [model.key for model in registry]})
    return app


def _install_middleware(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """Outermost first: request context (id, body limit, metrics), API keys, admission."""
    limits = AdmissionLimits(
        max_in_flight=settings.max_concurrent_requests,
        max_queued=settings.max_queued_requests,
        queue_timeout_s=settings.queue_timeout_s,
        request_timeout_s=settings.request_timeout_s,
    )
    app.add_middleware(AdmissionMiddleware, limits=limits, metrics=metrics.admission)
    if settings.api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys, metrics=metrics)
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_upload_bytes
    )


def build_api(metrics: ServiceMetrics) -> FastAPI:
    """Routes and error handlers without models or settings (enough for the OpenAPI document)."""
    app = FastAPI(
        title="Speech emotion recognition service",
        version=__version__,
        description="Emotion, affect and mixed-emotion estimates from speech, served from "
        "ONNX models. Errors are application/problem+json with a stable `code`.",
        lifespan=lifespan,
    )
    for router in (predict.router, explain.router, jobs.router, models.router, health.router):
        app.include_router(router)
    install_problem_handlers(app, metrics)
    install_access_document(app)
    return app
