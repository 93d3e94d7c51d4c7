"""Speech activity on real speech, silence and damaged signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.audio.prepare import resample
from service.speech.activity import (
    MERGE_GAP_S,
    MIN_REGION_S,
    SpeechActivity,
    SpeechRegion,
    detect_speech,
    smooth_regions,
)
from tests.audio_factory import load_clip

RATE_HZ = 16000


@pytest.fixture(scope="module")
def speech(data_dir: Path) -> np.ndarray:
    """RAVDESS actor 01, angry, 3.7 s at 16 kHz, about 1 s of room tone before the sentence."""
    clip, rate_hz = load_clip(data_dir / "ravdess" / "audio" / "03-01-05-02-01-01-01.flac")
    assert rate_hz == RATE_HZ
    mono: np.ndarray = clip[0]
    return mono


def _assert_well_formed(activity: SpeechActivity) -> None:
    ends = [0.0] + [value for r in activity.regions for value in (r.start_s, r.end_s)]
    assert ends == sorted(ends)
    assert all(r.end_s <= activity.duration_s + 1e-9 for r in activity.regions)
    assert all(r.duration_s >= MIN_REGION_S for r in activity.regions)
    assert 0.0 <= activity.speech_ratio <= 1.0


def test_real_speech_is_found(speech: np.ndarray) -> None:
    activity = detect_speech(speech, RATE_HZ)
    _assert_well_formed(activity)
    assert 0.3 < activity.speech_ratio < 0.95
    assert len(activity.regions) == 1  # one sentence, no pause longer than 0.3 s
    assert 0.5 < activity.regions[0].start_s < 1.5  # after the leading room tone
    assert activity.speech_ratio == pytest.approx(activity.speech_duration_s / activity.duration_s)
    assert len(activity.frame_flags) == int(np.ceil(speech.size / (0.03 * RATE_HZ)))


@pytest.mark.parametrize("rate_hz", [22050, 44100, 48000, 8000])
def test_any_sampling_rate_gives_the_same_regions(speech: np.ndarray, rate_hz: int) -> None:
    reference = detect_speech(speech, RATE_HZ).regions[0]
    region = detect_speech(resample(speech, RATE_HZ, rate_hz), rate_hz).regions[0]
    assert region.start_s == pytest.approx(reference.start_s, abs=0.1)
    assert region.end_s == pytest.approx(reference.end_s, abs=0.1)


def test_digital_silence_has_no_speech() -> None:
    activity = detect_speech(np.zeros(3 * RATE_HZ, dtype=np.float32), RATE_HZ)
    assert activity.regions == ()
    assert activity.speech_ratio == 0.0
    assert not any(activity.frame_flags)


def test_dc_offset_alone_is_not_speech() -> None:
    activity = detect_speech(np.full(3 * RATE_HZ, 0.3, dtype=np.float32), RATE_HZ)
    assert activity.regions == ()


def test_dc_offset_does_not_change_the_speech_found(speech: np.ndarray) -> None:
    clean = detect_speech(speech, RATE_HZ)
    offset = detect_speech(speech + np.float32(0.2), RATE_HZ)
    assert offset.speech_ratio == pytest.approx(clean.speech_ratio, abs=0.02)


def test_heavily_clipped_speech_is_still_speech(speech: np.ndarray) -> None:
    clipped = np.clip(speech * 200.0, -1.0, 1.0).astype(np.float32)
    assert np.mean(np.abs(clipped) >= 1.0) > 0.1
    activity = detect_speech(clipped, RATE_HZ)
    assert activity.speech_ratio > 0.3


@pytest.mark.parametrize("samples", [0, 1, 100, 479])
def test_shorter_than_a_frame(samples: int) -> None:
    loud_noise = np.random.default_rng(samples).uniform(-0.5, 0.5, samples).astype(np.float32)
    activity = detect_speech(loud_noise, RATE_HZ)
    assert activity.regions == ()
    assert activity.speech_ratio == 0.0
    assert activity.duration_s == pytest.approx(samples / RATE_HZ)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"aggressiveness": 4}, "aggressiveness"), ({"frame_ms": 25}, "frame_ms")],
)
def test_invalid_detector_settings(
    speech: np.ndarray, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        detect_speech(speech, RATE_HZ, **kwargs)


def test_smoothing_merges_short_gaps_and_drops_blips() -> None:
    frame_s = 0.03
    # speech 0-0.3 s, 0.24 s gap (merged), speech to 0.9 s, long gap, a 0.09 s blip (dropped)
    flags = (True,) * 10 + (False,) * 8 + (True,) * 12 + (False,) * 40 + (True,) * 3 + (False,) * 5
    regions = smooth_regions(flags, frame_s, duration_s=len(flags) * frame_s)
    assert MERGE_GAP_S > 0.24 and MIN_REGION_S > 0.09
    assert [(round(r.start_s, 6), round(r.end_s, 6)) for r in regions] == [(0.0, 0.9)]
    assert regions == (SpeechRegion(0.0, regions[0].end_s),)
