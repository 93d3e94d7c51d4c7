"""``POST /explain``: the ``/predict`` answer plus why (saliency, acoustic cues, references).

The upload goes through exactly the path of ``/predict`` (same form reader, same pipeline), so
bad input gets the same problem documents; the explanation then runs on the pipeline's result.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import MetricsDep, RequestIdDep, SelectedModelDep, SettingsDep
from service.api.openapi_docs import AUDIO_UPLOAD_BODY, PROBLEM_RESPONSES
from service.api.presenters import predict_response
from service.api.upload import read_single_file
from service.config import Settings
from service.explain.explanation import CueEvidence, Explanation, LabelConsistency, explain
from service.explain.figure import MEDIA_TYPES, render_figure
from service.explain.references import Gender
from service.inference.session import OnnxModel
from service.pipeline import Analysis, analyse
from service.schemas import (
    CueCheck,
    CueReference,
    ExplainedCue,
    ExplainResponse,
    LabelEvidence,
    NormsUsed,
    SaliencyMethod,
    SalientRegion,
    TimeSpan,
)
from service.schemas import Explanation as ExplanationSchema

router = APIRouter(tags=["explain"])

OutputFormat = Literal["json", "png", "svg"]
SALIENCY_METHOD: Final = (
    "occlusion sensitivity of the predicted label's probability over time-frequency tiles, "
    "weighted by the model's frame attention relative to uniform where the model has one"
)
OCCLUSION_FILL: Final = (
    "STFT bins above the utterance's noise floor (10th percentile of each bin's magnitude) "
    "replaced by the floor's magnitude with a random phase, then inverse STFT"
)
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
        _explain_upload, data, model, settings, gender, output_format
    )
    metrics.observe_prediction(
        analysis.timing_ms,
        analysis.decoded.duration_s,
        (model.manifest.name, model.manifest.version),
        analysis.overall.label,
    )
    if figure is not None:
        return Response(content=figure, media_type=MEDIA_TYPES[output_format])
    prediction = predict_response(analysis, model, request_id)
    return ExplainResponse(**dict(prediction), explanation=explanation_schema(explanation))


def _explain_upload(
    data: bytes, model: OnnxModel, settings: Settings, gender: Gender | None, fmt: OutputFormat
) -> tuple[Analysis, Explanation, bytes | None]:
    """Pipeline, explanation and (for png/svg) the figure; CPU-bound, run in a worker thread."""
    analysis = analyse(data, model, settings)
    explanation = explain(analysis, model, gender)
    figure = None if fmt == "json" else render_figure(explanation, analysis.signal, fmt)
    return analysis, explanation, figure


def explanation_schema(explanation: Explanation) -> ExplanationSchema:
    """The ``explanation`` field of the response (shaping only)."""
    saliency = explanation.saliency
    return ExplanationSchema(
        label=explanation.label,
        regions=[
            SalientRegion(
                start_s=r.start_s,
                end_s=r.end_s,
                low_hz=r.low_hz,
                high_hz=r.high_hz,
                weight=r.weight,
            )
            for r in explanation.regions
        ],
        cue_spans=[TimeSpan(start_s=a, end_s=b) for a, b in explanation.salient_spans_s],
        cues=[_cue(cue) for cue in explanation.cues],
        consistency_score=explanation.predicted.score,
        cues_compared=explanation.predicted.compared,
        runner_up=None if explanation.runner_up is None else _evidence(explanation.runner_up),
        norms=NormsUsed(group=explanation.norms.group, source=explanation.norms.source),
        saliency=SaliencyMethod(
            method=SALIENCY_METHOD,
            fill=OCCLUSION_FILL,
            time_tiles=saliency.grid.n_times,
            frequency_bands=saliency.grid.n_bands,
            attention=saliency.used_attention,
            model_calls=saliency.model_calls,
        ),
        summary=explanation.summary,
        notes=list(explanation.notes),
        timing_ms={stage: round(ms, 3) for stage, ms in explanation.timing_ms.items()},
    )


def _cue(cue: CueEvidence) -> ExplainedCue:
    reference = cue.reference
    return ExplainedCue(
        name=cue.name,
        unit=cue.unit,
        value=cue.inside,
        value_elsewhere=cue.elsewhere,
        reference=None
        if reference is None
        else CueReference(mean=reference.mean, std=reference.std, count=reference.count),
        z=cue.z,
        expected=cue.expectation.direction,
        consistent=cue.consistent,
        source=cue.expectation.source,
        source_parameter=cue.expectation.source_parameter,
    )


def _evidence(evidence: LabelConsistency) -> LabelEvidence:
    return LabelEvidence(
        label=evidence.label,
        probability=evidence.probability,
        consistency_score=evidence.score,
        cues_compared=evidence.compared,
        cues_consistent=evidence.consistent,
        cues=[
            CueCheck(
                name=name,
                expected=expectation.direction,
                consistent=verdict,
                source=expectation.source,
            )
            for name, expectation, verdict in evidence.cues
        ],
    )
