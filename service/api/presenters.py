"""Pipeline results -> response schemas (no computation here, only shaping)."""

from __future__ import annotations

from service.inference.session import OnnxModel
from service.pipeline import Analysis
from service.postprocess.estimate import AGGREGATION_RULE, Estimate
from service.schemas import (
    Affect,
    AudioInfo,
    EmotionEstimate,
    Mixed,
    ModelInfo,
    ModelRef,
    PredictResponse,
    Quality,
    SegmentResult,
    Sphere,
    Uncertainty,
)


def predict_response(analysis: Analysis, model: OnnxModel, request_id: str) -> PredictResponse:
    """The ``POST /predict`` body for one pipeline run."""
    segments = [
        SegmentResult(start_s=segment.start_s, end_s=segment.end_s, **_estimate_fields(result))
        for segment, result in zip(analysis.segments, analysis.segment_estimates, strict=True)
    ]
    return PredictResponse(
        request_id=request_id,
        model=model_ref(model),
        aggregation=AGGREGATION_RULE,
        segments=segments,
        quality=_quality(analysis),
        audio=_audio(analysis),
        timing_ms={stage: round(ms, 3) for stage, ms in analysis.timing_ms.items()},
        **_estimate_fields(analysis.overall),
    )


def model_ref(model: OnnxModel) -> ModelRef:
    manifest = model.manifest
    return ModelRef(name=manifest.name, version=manifest.version, sha256=manifest.sha256)


def model_info(model: OnnxModel, is_default: bool) -> ModelInfo:
    manifest = model.manifest
    neutral = manifest.neutral_point
    return ModelInfo(
        name=manifest.name,
        version=manifest.version,
        sha256=manifest.sha256,
        default=is_default,
        sampling_rate_hz=manifest.sampling_rate_hz,
        labels=list(manifest.heads.categorical.labels),
        heads=sorted(manifest.heads.output_names()),
        window_s=manifest.windowing.window_s,
        hop_s=manifest.windowing.hop_s,
        neutral_point=Affect(
            valence=neutral.valence, arousal=neutral.arousal, dominance=neutral.dominance
        ),
        metrics=manifest.metrics,
        metrics_protocol=manifest.metrics_protocol,
        description=manifest.description,
        licence=manifest.licence,
    )


def _estimate_fields(result: Estimate) -> dict[str, object]:
    fields = EmotionEstimate(
        label=result.label,
        confidence=result.confidence,
        probabilities=result.probabilities,
        distribution=result.distribution,
        mixed=Mixed(
            is_blend=result.mixed.is_blend,
            components=list(result.mixed.components),
            entropy=result.mixed.entropy,
        ),
        vad=None
        if result.affect is None
        else Affect(
            valence=float(result.affect[0]),
            arousal=float(result.affect[1]),
            dominance=float(result.affect[2]),
        ),
        sphere=None
        if result.sphere is None
        else Sphere(
            radius=result.sphere.radius,
            intensity=result.sphere.intensity,
            azimuth_deg=result.sphere.azimuth_deg,
            elevation_deg=result.sphere.elevation_deg,
            octant=result.sphere.octant,
        ),
        uncertainty=Uncertainty(
            measure=result.uncertainty.measure,
            value=result.uncertainty.value,
            threshold=result.uncertainty.threshold,
            abstain=result.uncertainty.abstain,
        ),
    )
    return dict(fields)


def _quality(analysis: Analysis) -> Quality:
    report = analysis.quality
    return Quality(
        duration_s=report.duration_s,
        speech_ratio=report.speech_ratio,
        speech_duration_s=sum(r.end_s - r.start_s for r in analysis.speech.regions),
        clipping_ratio=report.clipping_ratio,
        snr_db=report.snr_db,
        bandwidth_hz=report.bandwidth_hz,
        loudness_dbfs=report.loudness_dbfs,
        warnings=list(report.warnings),
    )


def _audio(analysis: Analysis) -> AudioInfo:
    decoded = analysis.decoded
    return AudioInfo(
        container=decoded.container,
        codec=decoded.codec,
        sampling_rate_hz=decoded.sampling_rate_hz,
        channels=int(decoded.signal.shape[0]),
        duration_s=decoded.duration_s,
    )
