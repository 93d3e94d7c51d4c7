"""The pydantic contract of every response (and so of ``openapi.yaml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
UnitInterval = Annotated[float, Field(ge=0.0, le=1.0)]


class _Schema(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModelRef(_Schema):
    """Which model answered."""

    name: str
    version: str
    sha256: str


class Affect(_Schema):
    """Valence, arousal, dominance in [0, 1]; 0.5 is the scale midpoint."""

    valence: UnitInterval
    arousal: UnitInterval
    dominance: UnitInterval


class Sphere(_Schema):
    """EmoSphere coordinates of the affect point around the model's neutral point."""

    radius: Annotated[float, Field(ge=0.0)]
    intensity: UnitInterval
    azimuth_deg: Annotated[float, Field(ge=0.0, lt=360.0)]
    elevation_deg: Annotated[float, Field(ge=-90.0, le=90.0)]
    octant: Literal["I", "II", "III", "IV", "V", "VI", "VII", "VIII"]


class Mixed(_Schema):
    """Summary of the mixed-emotion distribution."""

    is_blend: bool
    components: list[str]
    entropy: UnitInterval


class Uncertainty(_Schema):
    """How unsure the model is; ``abstain`` is true when ``value`` exceeds ``threshold``."""

    measure: Literal["entropy", "ensemble_mutual_information"]
    value: UnitInterval
    threshold: UnitInterval
    abstain: bool


class Quality(_Schema):
    """Measured properties of the upload, at its original sampling rate."""

    duration_s: float
    speech_ratio: UnitInterval
    speech_duration_s: float
    clipping_ratio: UnitInterval
    snr_db: float | None = Field(description="Estimated SNR; null when it cannot be estimated")
    bandwidth_hz: float
    loudness_dbfs: float
    warnings: list[str]


class AudioInfo(_Schema):
    """What was decoded."""

    container: str
    codec: str
    sampling_rate_hz: int
    channels: int
    duration_s: float


class EmotionEstimate(_Schema):
    """The fields shared by a whole-file result and a segment result."""

    label: str
    confidence: Probability
    probabilities: dict[str, Probability]
    distribution: dict[str, Probability]
    mixed: Mixed
    vad: Affect | None
    sphere: Sphere | None
    uncertainty: Uncertainty


class SegmentResult(EmotionEstimate):
    """The estimate for one segment of a long recording."""

    start_s: Annotated[float, Field(ge=0.0)]
    end_s: Annotated[float, Field(ge=0.0)]


class PredictResponse(EmotionEstimate):
    """The answer of ``POST /predict``."""

    request_id: str
    model: ModelRef
    aggregation: str = Field(description="How the top-level estimate combines the segments")
    segments: list[SegmentResult]
    quality: Quality
    audio: AudioInfo
    timing_ms: dict[str, float]


class ModelInfo(_Schema):
    """One entry of ``GET /models``."""

    name: str
    version: str
    sha256: str
    default: bool
    sampling_rate_hz: int
    labels: list[str]
    heads: list[str]
    window_s: float
    hop_s: float
    neutral_point: Affect
    metrics: dict[str, float]
    metrics_protocol: str
    description: str
    licence: str


class ModelList(_Schema):
    models: list[ModelInfo]


class Health(_Schema):
    status: Literal["ok"]


class Readiness(_Schema):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class Problem(_Schema):
    """RFC 9457 problem document, with the service's stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    instance: str | None = None
