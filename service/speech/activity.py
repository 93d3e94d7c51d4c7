"""Speech activity: where in a recording someone speaks (WebRTC detector + smoothing).

"Speech activity" here is voice-activity detection; *affect* / *vad* in this code base always
means valence, arousal and dominance (house style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import soxr
import webrtcvad

WEBRTC_RATES_HZ: Final[tuple[int, ...]] = (8000, 16000, 32000, 48000)  # webrtcvad README
WEBRTC_FRAME_MS: Final[tuple[int, ...]] = (10, 20, 30)  # webrtcvad README
WEBRTC_FALLBACK_RATE_HZ: Final[int] = 16000  # other rates are resampled to this (or to 8 kHz)
MERGE_GAP_S: Final[float] = 0.3
"""Pauses shorter than this stay inside one region: the 300 ms padding window of the
py-webrtcvad ``example.py`` collector (30 ms frames), about the length of a stop closure or a
breath between words."""
MIN_REGION_S: Final[float] = 0.25
"""Regions shorter than this (after merging) are dropped as clicks or noise bursts: the
``min_speech_duration_ms=250`` default of Silero VAD's ``get_speech_timestamps``."""
_PCM16_FULL_SCALE: Final[float] = 32767.0  # int16 maximum


@dataclass(frozen=True)
class SpeechRegion:
    """One stretch of speech, in seconds from the start of the recording."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SpeechActivity:
    """Detector output.

    ``frame_flags[k]`` is the raw WebRTC decision for ``[k * frame_s, (k + 1) * frame_s)``;
    ``regions`` are the smoothed speech stretches (sorted, disjoint, within
    ``[0, duration_s]``); ``speech_ratio`` is their total length over ``duration_s`` (0 for
    empty audio).
    """

    regions: tuple[SpeechRegion, ...]
    speech_ratio: float
    frame_flags: tuple[bool, ...]
    frame_s: float
    duration_s: float

    @property
    def speech_duration_s(self) -> float:
        """Total length of the regions in seconds."""
        return sum(region.duration_s for region in self.regions)


def detect_speech(
    signal: np.ndarray, sampling_rate_hz: int, aggressiveness: int = 2, frame_ms: int = 30
) -> SpeechActivity:
    """Find speech in a mono float32 ``(samples,)`` signal at any sampling rate.

    ``aggressiveness`` 0..3 is WebRTC's mode (higher drops more non-speech). The signal's mean
    is removed first (a DC offset would otherwise read as energy), samples are clipped to
    [-1, 1] for the 16-bit detector, and a trailing partial frame is zero-padded. Audio shorter
    than one frame, or silent, has no regions.
    """
    _check_arguments(signal, sampling_rate_hz, aggressiveness, frame_ms)
    duration_s = signal.size / sampling_rate_hz
    pcm16, rate_hz = _detector_input(signal, sampling_rate_hz)
    flags = _frame_flags(pcm16, rate_hz, aggressiveness, frame_ms)
    frame_s = frame_ms / 1000.0
    regions = smooth_regions(flags, frame_s, duration_s)
    total_s = sum(region.duration_s for region in regions)
    ratio = total_s / duration_s if duration_s > 0 else 0.0
    return SpeechActivity(regions, min(ratio, 1.0), flags, frame_s, duration_s)


def _check_arguments(
    signal: np.ndarray, sampling_rate_hz: int, aggressiveness: int, frame_ms: int
) -> None:
    if signal.ndim != 1:
        raise ValueError(f"signal must be mono (samples,), got shape {signal.shape}")
    if sampling_rate_hz <= 0:
        raise ValueError(f"sampling_rate_hz must be positive, got {sampling_rate_hz}")
    if aggressiveness not in range(4):
        raise ValueError(f"aggressiveness must be 0..3, got {aggressiveness}")
    if frame_ms not in WEBRTC_FRAME_MS:
        raise ValueError(f"frame_ms must be one of {WEBRTC_FRAME_MS}, got {frame_ms}")


def _detector_input(signal: np.ndarray, sampling_rate_hz: int) -> tuple[np.ndarray, int]:
    """Mean-removed int16 samples at a rate the WebRTC detector accepts."""
    rate_hz = sampling_rate_hz
    samples = signal.astype(np.float64)
    if rate_hz not in WEBRTC_RATES_HZ and samples.size:
        rate_hz = WEBRTC_FALLBACK_RATE_HZ if sampling_rate_hz >= WEBRTC_FALLBACK_RATE_HZ else 8000
        samples = soxr.resample(samples, sampling_rate_hz, rate_hz, quality="HQ")
    if samples.size:
        samples = samples - samples.mean()
    pcm = np.round(np.clip(samples, -1.0, 1.0) * _PCM16_FULL_SCALE)
    return pcm.astype(np.int16), rate_hz


def _frame_flags(
    pcm16: np.ndarray, rate_hz: int, aggressiveness: int, frame_ms: int
) -> tuple[bool, ...]:
    frame_samples = rate_hz * frame_ms // 1000
    frame_count = math.ceil(pcm16.size / frame_samples)
    padded = np.zeros(frame_count * frame_samples, dtype=np.int16)
    padded[: pcm16.size] = pcm16
    detector = webrtcvad.Vad(aggressiveness)
    frames = padded.reshape(frame_count, frame_samples)
    return tuple(bool(detector.is_speech(frame.tobytes(), rate_hz)) for frame in frames)


def smooth_regions(
    flags: tuple[bool, ...], frame_s: float, duration_s: float
) -> tuple[SpeechRegion, ...]:
    """Speech regions from per-frame flags: merge gaps < ``MERGE_GAP_S``, drop regions shorter
    than ``MIN_REGION_S``, clip to ``[0, duration_s]``."""
    raw = [
        SpeechRegion(first * frame_s, min(end * frame_s, duration_s))
        for first, end in _true_runs(flags)
    ]
    merged = _merge_close(raw, MERGE_GAP_S)
    return tuple(region for region in merged if region.duration_s >= MIN_REGION_S)


def _true_runs(flags: tuple[bool, ...]) -> list[tuple[int, int]]:
    """``(first, end)`` frame indexes (end exclusive) of each run of True."""
    padded = np.concatenate(([False], np.asarray(flags, dtype=bool), [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(first), int(end)) for first, end in zip(edges[::2], edges[1::2], strict=True)]


def _merge_close(regions: list[SpeechRegion], max_gap_s: float) -> list[SpeechRegion]:
    merged: list[SpeechRegion] = []
    for region in regions:
        if merged and region.start_s - merged[-1].end_s < max_gap_s:
            merged[-1] = SpeechRegion(merged[-1].start_s, region.end_s)
        else:
            merged.append(region)
    return merged
