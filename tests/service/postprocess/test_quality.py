"""Quality report on real speech, degraded in known ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from service.audio.prepare import resample
from service.postprocess.quality import (
    CLIPPING_LEVEL,
    POWER_FLOOR,
    QualityReport,
    assess_quality,
    clipping_ratio,
)
from service.speech.activity import detect_speech
from tests.audio_factory import load_clip, white_noise

RATE_HZ = 16000


@pytest.fixture(scope="module")
def speech(data_dir: Path) -> np.ndarray:
    """RAVDESS actor 01, angry, strong: 16 kHz mono, wideband (source was 48 kHz)."""
    clip, _ = load_clip(data_dir / "ravdess" / "audio" / "03-01-05-02-01-01-01.flac")
    mono: np.ndarray = clip[0]
    return mono


def _quality(signal: np.ndarray, rate_hz: int = RATE_HZ) -> QualityReport:
    signal = signal.astype(np.float32)
    return assess_quality(signal, rate_hz, detect_speech(signal, rate_hz))


def _speech_power(signal: np.ndarray) -> float:
    """Mean power over the detected speech regions (the level the SNR refers to)."""
    activity = detect_speech(signal, RATE_HZ)
    pieces = [
        signal[round(r.start_s * RATE_HZ) : round(r.end_s * RATE_HZ)] for r in activity.regions
    ]
    return float(np.mean(np.concatenate(pieces).astype(np.float64) ** 2))


def test_clean_studio_speech(speech: np.ndarray) -> None:
    report = _quality(speech)
    assert report.duration_s == pytest.approx(speech.size / RATE_HZ)
    assert 0.3 < report.speech_ratio < 0.95
    assert report.clipping_ratio == 0.0
    assert report.snr_db is not None and report.snr_db > 30
    assert report.bandwidth_hz > 5000
    assert -40 < report.loudness_dbfs < -10
    assert report.warnings == ()


def test_telephone_band_is_flagged_at_any_rate(speech: np.ndarray) -> None:
    """Band-limit to 3.4 kHz (ITU-T G.712 edge) and upsample: the bandwidth stays < 4 kHz."""
    lowpass = scipy.signal.butter(10, 3400, "lowpass", fs=RATE_HZ, output="sos")
    telephone = resample(scipy.signal.sosfilt(lowpass, speech).astype(np.float32), RATE_HZ, 44100)
    report = _quality(telephone, 44100)
    assert 3000 < report.bandwidth_hz < 4000
    assert "telephone_band" in report.warnings
    wideband = _quality(resample(speech, RATE_HZ, 44100), 44100)
    assert wideband.bandwidth_hz > 5000
    assert "telephone_band" not in wideband.warnings


def test_clipping_is_measured_and_flagged(speech: np.ndarray) -> None:
    gain = 0.5 / np.percentile(np.abs(speech), 99)  # 1 % of samples reach 0.5 ...
    clipped = np.clip(speech * gain * 4, -1.0, 1.0)  # ... and 4x louder, more than 1 % clip
    report = _quality(clipped)
    at_full_scale = float(np.mean(np.abs(clipped) >= CLIPPING_LEVEL))
    assert 0.5 * at_full_scale < report.clipping_ratio <= at_full_scale  # runs of >= 3 only
    assert report.clipping_ratio > 0.01
    assert "clipping" in report.warnings
    assert _quality(speech * gain).clipping_ratio == 0.0  # peaks under full scale


def test_clipping_counts_runs_not_single_peaks() -> None:
    signal = np.zeros(1000)
    signal[[10, 50, 51]] = 1.0  # a peak and a pair: not clipping
    signal[100:105] = -1.0  # a 5-sample plateau: clipping
    assert clipping_ratio(signal) == pytest.approx(5 / 1000)


def test_snr_estimates_are_ordered_and_close(speech: np.ndarray) -> None:
    speech_power = _speech_power(speech)
    estimates = {}
    for snr_db in (20.0, 0.0):
        noise = white_noise(speech.size, speech_power / 10 ** (snr_db / 10), seed=int(snr_db))
        report = _quality(speech + noise)
        assert report.snr_db is not None
        estimates[snr_db] = report.snr_db
    assert estimates[20.0] > estimates[0.0] + 10
    assert estimates[20.0] == pytest.approx(20.0, abs=6.0)
    assert estimates[0.0] == pytest.approx(0.0, abs=6.0)
    assert "low_snr" in _quality(speech + white_noise(speech.size, speech_power)).warnings


def test_little_speech(speech: np.ndarray) -> None:
    padded = np.concatenate([speech, np.zeros(10 * RATE_HZ, dtype=np.float32)])
    report = _quality(padded)
    assert report.speech_ratio < 0.3
    assert "little_speech" in report.warnings


def test_very_quiet(speech: np.ndarray) -> None:
    activity = detect_speech(speech, RATE_HZ)
    quiet = assess_quality(speech * np.float32(0.01), RATE_HZ, activity)  # -40 dB
    normal = assess_quality(speech, RATE_HZ, activity)
    assert quiet.loudness_dbfs == pytest.approx(normal.loudness_dbfs - 40, abs=0.01)
    assert "very_quiet" in quiet.warnings
    assert "very_quiet" in _quality(speech * np.float32(0.01)).warnings


def test_dc_offset(speech: np.ndarray) -> None:
    report = _quality(speech + 0.05)
    assert "dc_offset" in report.warnings
    assert report.loudness_dbfs == pytest.approx(_quality(speech).loudness_dbfs, abs=0.5)


def test_digital_silence_gives_finite_numbers() -> None:
    report = _quality(np.zeros(2 * RATE_HZ))
    assert report.snr_db is None
    assert report.bandwidth_hz == 0.0
    assert report.loudness_dbfs == pytest.approx(10 * np.log10(POWER_FLOOR))
    assert report.warnings == ("little_speech", "very_quiet")


def test_empty_signal() -> None:
    report = _quality(np.zeros(0))
    assert (report.duration_s, report.clipping_ratio, report.bandwidth_hz) == (0.0, 0.0, 0.0)
