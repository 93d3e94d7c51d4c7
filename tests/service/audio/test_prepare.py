"""The preprocessing contract: mono, finite, in bounds, at the model's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.audio.decode import DecodedAudio, DecodeLimits, decode_audio
from service.audio.prepare import check_finite, prepare_signal, resample, to_mono
from service.errors import AudioTooLong, AudioTooShort, EmptyAudio, InvalidSamples
from tests.audio_factory import FORMATS, float_wav_with, load_clip, tone_signal

LIMITS = DecodeLimits(max_duration_s=60.0)


def _decoded(signal: np.ndarray, rate_hz: int) -> DecodedAudio:
    return DecodedAudio(signal.astype(np.float32), rate_hz, "wav", "pcm_f32")


def _tone(frequency_hz: float, rate_hz: int, duration_s: float = 1.0) -> np.ndarray:
    time_s = np.arange(round(duration_s * rate_hz)) / rate_hz
    return (0.5 * np.sin(2 * np.pi * frequency_hz * time_s)).astype(np.float32)


def test_to_mono_is_the_channel_mean() -> None:
    stereo = np.array([[1.0, 0.5, -1.0], [0.0, 0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(to_mono(stereo), [0.5, 0.5, 0.0])
    assert to_mono(stereo).dtype == np.float32
    np.testing.assert_array_equal(to_mono(stereo[:1]), [1.0, 0.5, -1.0])


def test_to_mono_refuses_a_flat_array() -> None:
    with pytest.raises(ValueError, match=r"\(channels, samples\)"):
        to_mono(np.zeros(10, dtype=np.float32))


@pytest.mark.parametrize(("from_hz", "to_hz"), [(44100, 16000), (8000, 16000), (22050, 48000)])
def test_resample_keeps_length_frequency_and_level(from_hz: int, to_hz: int) -> None:
    resampled = resample(_tone(1000.0, from_hz), from_hz, to_hz)
    assert resampled.dtype == np.float32
    assert resampled.size == to_hz  # one second
    spectrum = np.abs(np.fft.rfft(resampled * np.hanning(resampled.size)))
    assert np.argmax(spectrum) * to_hz / resampled.size == pytest.approx(1000.0, abs=2.0)
    steady = resampled[to_hz // 10 : -to_hz // 10]
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.005)


def test_resample_rejects_what_the_new_rate_cannot_hold() -> None:
    """A 9 kHz tone is above the 8 kHz Nyquist limit of 16 kHz: HQ removes it (> 100 dB)."""
    resampled = resample(_tone(9000.0, 44100), 44100, 16000)
    level_db = 20 * np.log10(np.sqrt(np.mean(resampled[1600:-1600] ** 2)) / (0.5 / np.sqrt(2)))
    assert level_db < -100


def test_resample_same_rate_is_identity() -> None:
    tone = _tone(440.0, 16000)
    np.testing.assert_array_equal(resample(tone, 16000, 16000), tone)


@pytest.mark.parametrize(("value", "index"), [(np.nan, 100), (np.inf, 7), (-np.inf, 15999)])
def test_non_finite_samples_are_refused(value: float, index: int) -> None:
    decoded = decode_audio(float_wav_with({index: value}), LIMITS)
    with pytest.raises(InvalidSamples, match=f"1 samples are NaN or infinite .* index {index}"):
        check_finite(decoded.signal)
    with pytest.raises(InvalidSamples, match="re-export the recording"):
        prepare_signal(decoded, 16000, 0.5, 60.0)


def test_header_only_wav_is_empty() -> None:
    wav = FORMATS["wav_pcm_16"].encode(np.zeros((1, 0), np.float32), 16000)
    decoded = decode_audio(wav, LIMITS)
    with pytest.raises(EmptyAudio, match="no audio samples"):
        prepare_signal(decoded, 16000, 0.5, 60.0)


def test_too_short_names_duration_and_limit() -> None:
    with pytest.raises(AudioTooShort, match=r"lasts 0\.200 s; upload at least 0\.5 s"):
        prepare_signal(_decoded(tone_signal(0.2, 8000), 8000), 16000, 0.5, 60.0)


def test_too_long_names_duration_and_limit() -> None:
    with pytest.raises(AudioTooLong, match=r"lasts 12\.0 s; the limit is 10 s"):
        prepare_signal(_decoded(tone_signal(12.0, 8000), 8000), 16000, 0.5, 10.0)


def test_prepare_real_stereo_44k_clip(data_dir: Path) -> None:
    clip, rate_hz = load_clip(data_dir / "ravdess" / "audio" / "03-01-01-01-01-01-01.flac")
    stereo_44k = np.stack([resample(clip[0], rate_hz, 44100)] * 2)
    prepared = prepare_signal(_decoded(stereo_44k, 44100), 16000, 0.5, 60.0)
    assert prepared.shape == (round(stereo_44k.shape[1] * 16000 / 44100),)
    assert prepared.dtype == np.float32
    aligned = min(prepared.size, clip.shape[1])
    assert np.corrcoef(prepared[:aligned], clip[0, :aligned])[0, 1] > 0.999
