"""``POST /explain``: the ``/predict`` answer plus why (saliency, acoustic cues, references).

The upload goes through exactly the path of ``/predict`` (same form reader, same pipeline), so
bad input gets the same problem documents; the explanation then runs on the pipeline's result.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import (
    MetricsDep,
    ModelRunnerDep,
    RequestIdDep,
    SelectedModelDep,
    SettingsDep,
)
from service.api.explain_presenters import explain_response
from service.api.openapi_docs import AUDIO_UPLOAD_BODY, PROBLEM_RESPONSES
from service.api.upload import read_single_file
from service.config import Settings
from service.explain.explanation import Explanation, explain
from service.explain.figure import MEDIA_TYPES, render_figure
from service.explain.references import Gender
from service.inference.batching import SegmentRunner
from service.inference.session import OnnxModel
from service.pipeline import Analysis, analyse
from service.schemas import ExplainResponse

router = APIRouter(tags=["explain"])

OutputFormat = Literal["json", "png", "svg"]
_FIGURE_CONTENT: Final = {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in MEDIA_TYPES.values()
}

GenderQuery = Annotated[
    Gender | None,
    Query(
        description="Speaker gender for the neutral-speech norms of the z-scores; "
        "without it the pooled (both genders) norms are used"
    ),
]
FormatQuery = Annotated[
    OutputFormat,
    Query(alias="format", description="`json` (default), or a figure: `png` or `svg`"),
]


@router.post(
    "/explain",
    response_model=ExplainResponse,
    summary="Emotion of one recording, and why",
    openapi_extra={"requestBody": AUDIO_UPLOAD_BODY},
    responses={
        200: {
            "description": "JSON, or the figure with ?format=png|svg",
            "content": _FIGURE_CONTENT,
        },
        **PROBLEM_RESPONSES,
    },
)
async def explain_recording(
    request: Request,
    model: SelectedModelDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    request_id: RequestIdDep,
    runner: ModelRunnerDep,
    gender: GenderQuery = None,
    output_format: FormatQuery = "json",
) -> Any:
    """The `/predict` answer plus `explanation`: salient regions (time span, frequency band,
    weight), acoustic cues inside them and elsewhere against per-gender neutral-speech norms
    (z-scores) and the directions vocal-emotion research expects for the predicted label, a
    consistency score, the runner-up label's evidence and a plain-language summary. With
    `?format=png` or `svg`: a figure of the spectrogram, regions, F0, loudness and cues."""
    data, _ = await read_single_file(request, settings.max_form_field_bytes)
    analysis, explanation, figure = await run_in_threadpool(
        _explain_upload, data, (model, runner), settings, gender, output_format
    )
    metrics.observe_prediction(
        analysis.timing_ms,
        analysis.decoded.duration_s,
        (model.manifest.name, model.manifest.version),
        analysis.overall.label,
    )
    if figure is not None:
        return Response(content=figure, media_type=MEDIA_TYPES[output_format])
    return explain_response(analysis, explanation, model, request_id)


def _explain_upload(
    data: bytes,
    model_and_runner: tuple[OnnxModel, SegmentRunner],
    settings: Settings,
    gender: Gender | None,
    fmt: OutputFormat,
) -> tuple[Analysis, Explanation, bytes | None]:
    """Pipeline (its model call micro-batched), explanation (the occlusion calls go to the
    model directly) and for png/svg the figure; CPU-bound, run in a worker thread."""
    model, runner = model_and_runner
    analysis = analyse(data, model, settings, runner)
    explanation = explain(analysis, model, gender)
    figure = None if fmt == "json" else render_figure(explanation, analysis.signal, fmt)
    return analysis, explanation, figure
