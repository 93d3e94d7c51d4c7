"""Explanation results -> the ``POST /explain`` body (shaping only; shared with batch jobs)."""

from __future__ import annotations

from typing import Final

from service.api.presenters import predict_response
from service.explain.explanation import CueEvidence, Explanation, LabelConsistency
from service.inference.session import OnnxModel
from service.pipeline import Analysis
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

SALIENCY_METHOD: Final = (
    "occlusion sensitivity of the predicted label's probability over time-frequency tiles, "
    "weighted by the model's frame attention relative to uniform where the model has one"
)
OCCLUSION_FILL: Final = (
    "STFT bins above the utterance's noise floor (10th percentile of each bin's magnitude) "
    "replaced by the floor's magnitude with a random phase, then inverse STFT"
)


def explain_response(
    analysis: Analysis, explanation: Explanation, model: OnnxModel, request_id: str
) -> ExplainResponse:
    """The ``/predict`` body of ``analysis`` plus its ``explanation``."""
    prediction = predict_response(analysis, model, request_id)
    return ExplainResponse(**dict(prediction), explanation=explanation_schema(explanation))


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
