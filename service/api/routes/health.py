"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.api.deps import MetricsDep, RegistryDep
from service.jobs.manager import JobManager
from service.metrics import exposition_registry
from service.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Models are loaded and the service can answer",
    description="`checks.queue` says whether the batch-job queue answers; it does not make the "
    "service unready, because /predict works without it (job endpoints answer 503 then).",
    responses={503: {"model": Readiness, "description": "Not ready; checks say why"}},
)
async def readyz(request: Request, registry: RegistryDep) -> JSONResponse:
    jobs: JobManager = request.app.state.jobs
    checks = {
        "models": f"{len(registry)} loaded, default {registry.default.key}",
        "queue": await run_in_threadpool(jobs.readiness),
    }
    ready = len(registry) > 0
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition"}},
)
async def metrics(service_metrics: MetricsDep) -> Response:
    registry = exposition_registry(service_metrics)
    text = await run_in_threadpool(generate_latest, registry)  # reads Redis (and worker files)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
