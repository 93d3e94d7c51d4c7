"""``POST /predict``: one upload in, one emotion estimate out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from service.api.deps import (
    MetricsDep,
    ModelRunnerDep,
    RequestIdDep,
    SelectedModelDep,
    SettingsDep,
)
from service.api.openapi_docs import AUDIO_UPLOAD_BODY, PROBLEM_RESPONSES
from service.api.presenters import predict_response
from service.api.upload import read_single_file
from service.pipeline import analyse
from service.schemas import PredictResponse

router = APIRouter(tags=["predict"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    summary="Emotion of one recording",
    openapi_extra={"requestBody": AUDIO_UPLOAD_BODY},
    responses=PROBLEM_RESPONSES,
)
async def predict(
    request: Request,
    model: SelectedModelDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    request_id: RequestIdDep,
    runner: ModelRunnerDep,
) -> PredictResponse:
    """Categorical probabilities, mixed-emotion distribution, valence/arousal/dominance with
    their EmoSphere region, uncertainty, audio quality and per-segment results."""
    data, _ = await read_single_file(request, settings.max_form_field_bytes)
    analysis = await run_in_threadpool(analyse, data, model, settings, runner)
    metrics.observe_prediction(
        analysis.timing_ms,
        analysis.decoded.duration_s,
        (model.manifest.name, model.manifest.version),
        analysis.overall.label,
    )
    return predict_response(analysis, model, request_id)
