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


class SalientRegion(_Schema):
    """A time span and frequency band whose occlusion lowered the predicted label the most."""

    start_s: Annotated[float, Field(ge=0.0)]
    end_s: Annotated[float, Field(ge=0.0)]
    low_hz: Annotated[float, Field(ge=0.0)]
    high_hz: Annotated[float, Field(ge=0.0)]
    weight: Annotated[float, Field(ge=0.0, le=1.0, description="Share of the total saliency")]


class TimeSpan(_Schema):
    """A stretch of the recording, in seconds from its start."""

    start_s: Annotated[float, Field(ge=0.0)]
    end_s: Annotated[float, Field(ge=0.0)]


class CueReference(_Schema):
    """Neutral-speech norm of a cue: mean and standard deviation over clips, in the cue's unit."""

    mean: float
    std: float
    count: int = Field(description="Neutral clips the norm was computed from")


class ExplainedCue(_Schema):
    """One acoustic cue inside the salient regions, elsewhere, and against its references."""

    name: str
    unit: str
    value: float | None = Field(description="Inside the salient regions; null if unmeasurable")
    value_elsewhere: float | None = Field(description="In the rest of the speech")
    reference: CueReference | None
    z: float | None = Field(description="(value - reference.mean) / reference.std")
    expected: Literal["higher", "lower", "either"] = Field(
        description="Direction vocal-emotion research expects for the predicted label"
    )
    consistent: bool | None = Field(description="z points the expected way; null if not judged")
    source: str = Field(description="Citation of the expected direction (empty: none stated)")
    source_parameter: str = Field(description="The source's own name for the parameter")


class CueCheck(_Schema):
    """One cue's expected direction for a label and whether the salient regions agree."""

    name: str
    expected: Literal["higher", "lower", "either"]
    consistent: bool | None
    source: str


class LabelEvidence(_Schema):
    """How consistent the salient-region cues are with the expert table for one label."""

    label: str
    probability: Annotated[float, Field(ge=0.0, le=1.0)]
    consistency_score: float | None = Field(
        description="Share of compared cues pointing the expected way; null if none compared"
    )
    cues_compared: int
    cues_consistent: int
    cues: list[CueCheck]


class NormsUsed(_Schema):
    """Which neutral-speech norms the z-scores use."""

    group: Literal["female", "male", "pooled"]
    source: str


class SaliencyMethod(_Schema):
    """How the saliency was computed."""

    method: str
    fill: str
    time_tiles: int
    frequency_bands: int
    attention: bool = Field(description="Weighted by the model's frame attention")
    model_calls: int


class Explanation(_Schema):
    """Why the model chose its label: salient regions, cues, references, consistency."""

    label: str
    regions: list[SalientRegion]
    cue_spans: list[TimeSpan] = Field(
        description="Where the cue values were measured: the regions' time spans, widened by "
        "the next most salient slices when too few cues were measurable there"
    )
    cues: list[ExplainedCue]
    consistency_score: float | None
    cues_compared: int
    runner_up: LabelEvidence | None
    norms: NormsUsed
    saliency: SaliencyMethod
    summary: str
    notes: list[str]
    timing_ms: dict[str, float]


class ExplainResponse(PredictResponse):
    """The answer of ``POST /explain``: the ``/predict`` answer plus its explanation."""

    explanation: Explanation
