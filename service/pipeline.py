"""The one place the stages run in order and are timed.

bytes -> decode -> mono + checks -> resample -> speech activity -> quality -> segments ->
batched model call -> per-segment estimates -> duration-weighted aggregate.
The API and the batch worker both call :func:`analyse`; it is synchronous and CPU-bound, so
the API runs it in a worker thread. The model call goes through a
:class:`~service.inference.batching.SegmentRunner`: the API's micro-batcher (which merges the
segments of concurrent requests into one call), or the model directly (the batch worker).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from service.audio.decode import DecodedAudio, DecodeLimits, decode_audio
from service.audio.prepare import check_duration, check_finite, resample, to_mono
from service.audio.segment import Segment, plan_segments
from service.config import Settings
from service.errors import NoSpeech
from service.inference.batching import DirectRunner, ModelSlot, SegmentRunner, pad_batch
from service.inference.session import OnnxModel
from service.postprocess.estimate import (
    Estimate,
    HeadValues,
    aggregate,
    estimate,
    head_values,
)
from service.postprocess.quality import QualityReport, assess_quality
from service.speech.activity import SpeechActivity, detect_speech

__all__ = ["Analysis", "StageTimer", "analyse", "pad_batch"]  # pad_batch: for the benchmark


@dataclass
class StageTimer:
    """Wall-clock milliseconds per stage, in the order the stages ran."""

    timing_ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start_s = time.perf_counter()
        try:
            yield
        finally:
            self.timing_ms[name] = (time.perf_counter() - start_s) * 1000.0


@dataclass(frozen=True)
class Analysis:
    """Everything one run of the pipeline produced.

    ``signal`` is the mono model-rate signal ``(samples,)`` float32 (the explanation reuses it).
    """

    decoded: DecodedAudio
    signal: np.ndarray
    sampling_rate_hz: int
    speech: SpeechActivity
    quality: QualityReport
    segments: tuple[Segment, ...]
    segment_estimates: tuple[Estimate, ...]
    overall: Estimate
    timing_ms: dict[str, float]


def analyse(
    data: bytes, model: OnnxModel, settings: Settings, runner: SegmentRunner | None = None
) -> Analysis:
    """Run the whole pipeline on one upload.

    ``runner`` takes the model calls; without it the model runs in this thread.

    Raises:
        InputError subclasses for every problem with the audio (see ``service/errors.py``).
    """
    runner = runner or DirectRunner(model, settings.max_batch_segments, settings.max_batch_audio_s)
    with runner.slot() as slot:
        return _analyse_in_slot(data, model, settings, slot)


def _analyse_in_slot(
    data: bytes, model: OnnxModel, settings: Settings, slot: ModelSlot
) -> Analysis:
    timer = StageTimer()
    total_start_s = time.perf_counter()
    rate_hz = model.manifest.sampling_rate_hz
    with timer.stage("decode"):
        decoded = decode_audio(data, DecodeLimits(max_duration_s=settings.max_duration_s))
    with timer.stage("resample"):
        mono_native = _checked_mono(decoded, model, settings)
        signal = resample(mono_native, decoded.sampling_rate_hz, rate_hz)
    with timer.stage("speech_activity"):
        speech = detect_speech(signal, rate_hz, aggressiveness=settings.speech_aggressiveness)
    with timer.stage("quality"):
        quality = assess_quality(mono_native, decoded.sampling_rate_hz, speech)
    _check_speech(speech, settings)
    windowing = model.manifest.windowing
    segments = plan_segments(
        len(signal) / rate_hz,
        speech.regions,
        windowing.window_s,
        windowing.hop_s,
        windowing.min_duration_s,
        crop_to_speech=windowing.crop_to_speech,
        crop_margin_s=windowing.crop_margin_s,
    )
    with timer.stage("inference"):
        values = _run_segments(slot, model, signal, segments)
    with timer.stage("postprocess"):
        durations_s = np.array([segment.end_s - segment.start_s for segment in segments])
        segment_estimates = tuple(estimate(value, model.manifest) for value in values)
        overall = estimate(aggregate(values, durations_s), model.manifest)
    timer.timing_ms["total"] = (time.perf_counter() - total_start_s) * 1000.0
    return Analysis(
        decoded,
        signal,
        rate_hz,
        speech,
        quality,
        segments,
        segment_estimates,
        overall,
        timer.timing_ms,
    )


def _checked_mono(decoded: DecodedAudio, model: OnnxModel, settings: Settings) -> np.ndarray:
    """Mono ``(samples,)`` at the decoded rate, after the duration and finite-sample checks."""
    min_duration_s = max(settings.min_duration_s, model.manifest.windowing.min_duration_s)
    check_duration(decoded.duration_s, min_duration_s, settings.max_duration_s)
    check_finite(decoded.signal)
    return to_mono(decoded.signal)


def _check_speech(speech: SpeechActivity, settings: Settings) -> None:
    speech_s = sum(region.end_s - region.start_s for region in speech.regions)
    if settings.reject_no_speech and speech_s < settings.min_speech_s:
        raise NoSpeech(
            f"found {speech_s:.2f} s of speech, fewer than the {settings.min_speech_s:.2f} s "
            "needed for an emotion estimate; upload a recording in which someone speaks"
        )


def _run_segments(
    slot: ModelSlot, model: OnnxModel, signal: np.ndarray, segments: tuple[Segment, ...]
) -> list[HeadValues]:
    """One :class:`HeadValues` per segment; the pieces are views of ``signal``."""
    rate_hz = model.manifest.sampling_rate_hz
    spans = [(round(s.start_s * rate_hz), round(s.end_s * rate_hz)) for s in segments]
    outputs = slot.run([signal[start:end] for start, end in spans])
    return [value for group in outputs for value in head_values(group, model.manifest)]
