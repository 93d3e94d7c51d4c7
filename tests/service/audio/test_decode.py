"""Decoding: every format, rate and channel count; every refusal with its exact error."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.audio.decode import DecodeLimits, decode_audio
from service.audio.prepare import resample, to_mono
from service.errors import (
    AudioTooLong,
    CorruptAudio,
    SamplingRateTooLow,
    ServiceError,
    TooManyChannels,
)
from tests.audio_factory import (
    FORMATS,
    OPUS_OUTPUT_RATE_HZ,
    corrupt_payload,
    encode_pyav,
    encode_soundfile,
    flac_with_unknown_length,
    load_clip,
    silent_flac,
    tone_signal,
    truncate,
    wav_with_declared_sizes,
    wav_with_header_field,
)

RATES_HZ = (8000, 22050, 44100, 48000)
TONE_S = 0.5
LIMITS = DecodeLimits(max_duration_s=60.0)
FLOAT32_BYTES = 4
QUANTISATION_STEP = {  # largest rounding error of each lossless encoding, full scale 1.0
    "wav_pcm_u8": 1 / 128,
    "wav_pcm_16": 1 / 32768,
    "wavex_pcm_16": 1 / 32768,
    "rf64_pcm_16": 1 / 32768,
    "flac": 1 / 32768,
    "ogg_flac": 1 / 32768,
    "wav_pcm_24": 1 / 2**23,
    "wav_pcm_32": 1e-7,  # float32 resolution dominates
    "wav_float": 1e-7,
    "wav_double": 1e-7,
}
MIN_CORRELATION = {"wav_pcm_u8": 0.99}  # 8-bit: about 40 dB SNR on this clip
MATRIX = [
    (name, rate_hz, channels)
    for name, fmt in FORMATS.items()
    for rate_hz in RATES_HZ
    for channels in fmt.channel_counts
]


def _expected_rate_hz(name: str, rate_hz: int) -> int:
    return OPUS_OUTPUT_RATE_HZ if FORMATS[name].codec == "opus" else rate_hz


@pytest.mark.parametrize(("name", "rate_hz", "channels"), MATRIX)
def test_format_rate_channels_decode(name: str, rate_hz: int, channels: int) -> None:
    fmt = FORMATS[name]
    original = tone_signal(TONE_S, rate_hz, channels)
    decoded = decode_audio(fmt.encode(original, rate_hz), LIMITS)
    assert (decoded.container, decoded.codec) == (fmt.container, fmt.codec)
    assert decoded.signal.dtype == np.float32
    assert decoded.signal.shape[0] == channels
    assert decoded.sampling_rate_hz == _expected_rate_hz(name, rate_hz)
    assert decoded.duration_s == pytest.approx(TONE_S, abs=fmt.tolerance_s)
    if fmt.lossless:
        assert np.max(np.abs(decoded.signal - original)) <= QUANTISATION_STEP[name]
    else:
        # Energy in (full scale)^2 * s: codec padding adds none, Opus's 48 kHz output neither.
        decoded_energy = np.sum(decoded.signal**2) / decoded.sampling_rate_hz
        energy_ratio = decoded_energy / (np.sum(original**2) / rate_hz)
        assert energy_ratio == pytest.approx(1.0, abs=0.2)


def _aligned_correlation(reference: np.ndarray, candidate: np.ndarray, max_lag: int) -> float:
    """Pearson correlation after shifting ``candidate`` by the best lag in +-``max_lag``."""
    length = min(reference.size, candidate.size)
    a, b = reference[:length].astype(np.float64), candidate[:length].astype(np.float64)
    cross = scipy.signal.correlate(b, a, mode="full", method="fft")
    lags = np.arange(-length + 1, length)
    in_range = np.abs(lags) <= max_lag
    lag = int(lags[in_range][np.argmax(cross[in_range])])
    shifted = b[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), b[:lag]])
    overlap = min(a.size, shifted.size)
    return float(np.corrcoef(a[:overlap], shifted[:overlap])[0, 1])


@pytest.fixture(scope="module")
def ravdess_44k(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real RAVDESS clip (16 kHz mono), peak-normalised to 0.5, and its 44.1 kHz stereo copy."""
    clip, rate_hz = load_clip(data_dir / "ravdess" / "audio" / "03-01-05-02-01-01-01.flac")
    mono_16k = 0.5 * clip[0] / np.max(np.abs(clip[0]))
    mono_44k = resample(mono_16k, rate_hz, 44100)
    return mono_16k, np.stack([mono_44k, mono_44k])


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_real_speech_survives_each_format(
    ravdess_44k: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    reference_16k, stereo_44k = ravdess_44k
    decoded = decode_audio(FORMATS[name].encode(stereo_44k, 44100), LIMITS)
    back_16k = resample(to_mono(decoded.signal), decoded.sampling_rate_hz, 16000)
    assert back_16k.size == pytest.approx(reference_16k.size, abs=16000 * FORMATS[name].tolerance_s)
    max_lag = round(16000 * FORMATS[name].tolerance_s)  # codec delay: at most one frame
    correlation = _aligned_correlation(reference_16k, back_16k, max_lag)
    assert correlation > MIN_CORRELATION.get(name, 0.999 if FORMATS[name].lossless else 0.9)


@pytest.mark.parametrize(
    ("subtype", "codec"),
    [("IMA_ADPCM", "ima_adpcm"), ("MS_ADPCM", "ms_adpcm"), ("GSM610", "gsm610")],
)
def test_legacy_wav_codecs_decode(subtype: str, codec: str) -> None:
    wav = encode_soundfile(tone_signal(0.5, 8000), 8000, "WAV", subtype)
    decoded = decode_audio(wav, LIMITS)
    assert (decoded.container, decoded.codec, decoded.sampling_rate_hz) == ("wav", codec, 8000)
    assert decoded.duration_s == pytest.approx(0.5, abs=0.07)  # the last block is padded


MANY_PLANAR_CHANNELS = [("m4a_aac", 8), ("adts_aac", 8), ("webm_opus", 8), ("webm_opus", 12)]
"""Codecs whose decoders give planar frames, at 8 channels and more: PyAV 18 reads a 9th plane
of such a frame from memory past its pointer array, which crashed the process on an upload."""
_DECODE_IN_CHILD = """
import sys
import numpy as np
from service.audio.decode import DecodeLimits, decode_audio
decoded = decode_audio(sys.stdin.buffer.read(), DecodeLimits(max_duration_s=60.0))
np.save(sys.stdout.buffer, decoded.signal)
"""


def _decode_in_child(data: bytes) -> np.ndarray:
    """``data`` decoded in a child interpreter, so that a crash fails this test, not the suite."""
    child = subprocess.run(
        [sys.executable, "-c", _DECODE_IN_CHILD], input=data, capture_output=True, check=False
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")[-2000:]
    return np.load(io.BytesIO(child.stdout))


def _dominant_frequency_hz(channel: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(channel * np.hanning(channel.size)))
    return float(np.fft.rfftfreq(channel.size, 1 / rate_hz)[np.argmax(spectrum)])


@pytest.mark.parametrize(("name", "channels"), MANY_PLANAR_CHANNELS)
def test_many_planar_channels_decode_each_channel(name: str, channels: int) -> None:
    rate_hz = 48000
    original = tone_signal(TONE_S, rate_hz, channels)
    signal = _decode_in_child(FORMATS[name].encode(original, rate_hz))
    assert signal.dtype == np.float32 and signal.shape[0] == channels
    # Each channel keeps its own tones (tone_signal: 200 + 110 k Hz and 1000 + 370 k Hz, equal
    # amplitude), so a swapped, repeated or garbage channel shows up as a wrong frequency.
    resolution_hz = 2 * rate_hz / signal.shape[1]
    for k in range(channels):
        found_hz = _dominant_frequency_hz(signal[k], rate_hz)
        expected_hz = min([200 + 110 * k, 1000 + 370 * k], key=lambda hz: abs(hz - found_hz))
        assert found_hz == pytest.approx(expected_hz, abs=resolution_hz), k
        energy_ratio = np.mean(signal[k] ** 2) / np.mean(original[k] ** 2)
        assert energy_ratio == pytest.approx(1.0, abs=0.2), k


def test_sampling_rate_below_8k_is_refused() -> None:
    wav = encode_soundfile(tone_signal(0.5, 6000), 6000, "WAV", "PCM_16")
    with pytest.raises(SamplingRateTooLow, match="6000 Hz; record or export it at 8000 Hz"):
        decode_audio(wav, LIMITS)


def test_too_many_channels() -> None:
    wav = FORMATS["wav_pcm_16"].encode(tone_signal(0.2, 16000, 6), 16000)
    with pytest.raises(TooManyChannels, match="6 channels; at most 2"):
        decode_audio(wav, DecodeLimits(max_duration_s=60, max_channels=2))


def test_forged_channel_count_is_refused() -> None:
    wav = wav_with_header_field(
        FORMATS["wav_pcm_16"].encode(tone_signal(0.2, 16000), 16000), 22, 500
    )
    with pytest.raises(TooManyChannels, match="500 channels"):
        decode_audio(wav, LIMITS)


@pytest.mark.parametrize(("offset", "field"), [(22, "channels"), (24, "rate")])
def test_zero_channels_or_rate_is_corrupt(offset: int, field: str) -> None:
    wav = FORMATS["wav_pcm_16"].encode(tone_signal(0.2, 16000), 16000)
    fmt = "<H" if field == "channels" else "<I"
    with pytest.raises(CorruptAudio, match="could not be decoded"):
        decode_audio(wav_with_header_field(wav, offset, 0, fmt), LIMITS)


def test_header_declared_duration_is_refused_before_decoding() -> None:
    wav = FORMATS["wav_pcm_16"].encode(tone_signal(3.0, 8000), 8000)
    with pytest.raises(AudioTooLong, match=r"header declares 3\.0 s of audio; the limit is 2 s"):
        decode_audio(wav, DecodeLimits(max_duration_s=2.0))


def _peak_traced_bytes(data: bytes, limits: DecodeLimits) -> int:
    """Peak Python/numpy allocation while decoding ``data``, which must raise AudioTooLong."""
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLong, match="the limit is 10 s"):
            decode_audio(data, limits)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def hour_of_silent_flac() -> bytes:
    return silent_flac(3600.0, rate_hz=8000)  # ~90 kB, 28.8 M samples


def test_decompression_bomb_is_refused_from_its_header(hour_of_silent_flac: bytes) -> None:
    full_bytes = 3600 * 8000 * FLOAT32_BYTES
    peak = _peak_traced_bytes(hour_of_silent_flac, DecodeLimits(max_duration_s=10))
    assert peak < full_bytes / 1000


def test_bomb_without_declared_length_stops_at_the_limit(hour_of_silent_flac: bytes) -> None:
    """STREAMINFO says "length unknown": decoding streams and stops just past 10 s."""
    limit_bytes = 10 * 8000 * FLOAT32_BYTES
    peak = _peak_traced_bytes(flac_with_unknown_length(hour_of_silent_flac), DecodeLimits(10))
    assert peak < 2 * limit_bytes  # the full hour would be 360 times the limit


def test_long_mp3_stops_decoding_at_the_limit() -> None:
    """MP3 states no exact length, so the frame-by-frame count must stop it."""
    two_minutes = encode_pyav(np.zeros((1, 120 * 8000), np.float32), 8000, "mp3", "libmp3lame")
    peak = _peak_traced_bytes(two_minutes, DecodeLimits(max_duration_s=10))
    assert peak < 2 * 10 * 8000 * FLOAT32_BYTES


def test_wav_with_absurd_declared_size_decodes_what_is_there() -> None:
    wav = FORMATS["wav_pcm_16"].encode(tone_signal(0.5, 16000), 16000)
    decoded = decode_audio(wav_with_declared_sizes(wav, 0xFFFFFFFF), LIMITS)
    assert decoded.signal.shape == (1, 8000)


def test_truncated_wav_decodes_the_samples_present() -> None:
    wav = FORMATS["wav_pcm_16"].encode(tone_signal(0.5, 16000), 16000)
    decoded = decode_audio(truncate(wav, 44 + 2 * 3000), LIMITS)
    assert decoded.signal.shape == (1, 3000)


def test_wav_cut_inside_its_header_is_corrupt() -> None:
    wav = FORMATS["wav_pcm_16"].encode(tone_signal(0.5, 16000), 16000)
    with pytest.raises(CorruptAudio, match=r"WAV file could not be decoded \(.*'data'.*re-export"):
        decode_audio(truncate(wav, 30), LIMITS)


COMPRESSED = ["flac", "ogg_vorbis", "ogg_opus", "mp3", "m4a_aac", "adts_aac", "webm_opus"]


@pytest.fixture(scope="module")
def two_seconds_of_each() -> dict[str, bytes]:
    return {
        name: FORMATS[name].encode(tone_signal(2.0, 16000, FORMATS[name].channel_counts[0]), 16000)
        for name in [*COMPRESSED, "webm_vorbis"]
    }


@pytest.mark.parametrize("name", [*COMPRESSED, "webm_vorbis"])
def test_garbage_payload_is_corrupt(two_seconds_of_each: dict[str, bytes], name: str) -> None:
    data = two_seconds_of_each[name]
    with pytest.raises(CorruptAudio, match="re-export or re-encode"):
        decode_audio(corrupt_payload(data, start=len(data) // 4), LIMITS)


@pytest.mark.parametrize("name", sorted(set(COMPRESSED) - {"mp3"}))
def test_truncated_compressed_audio_is_corrupt(
    two_seconds_of_each: dict[str, bytes], name: str
) -> None:
    data = two_seconds_of_each[name]
    with pytest.raises(CorruptAudio, match="re-export or re-encode"):
        decode_audio(truncate(data, len(data) // 3), LIMITS)


def test_truncated_mp3_decodes_the_frames_present(two_seconds_of_each: dict[str, bytes]) -> None:
    """MP3 is a bare frame sequence (no exact stated length): a cut file is a shorter file."""
    data = two_seconds_of_each["mp3"]
    decoded = decode_audio(truncate(data, len(data) // 2), LIMITS)
    assert decoded.duration_s == pytest.approx(1.0, abs=0.15)


@pytest.fixture(scope="module")
def samples_of_each_format() -> dict[str, bytes]:
    return {
        name: fmt.encode(tone_signal(0.3, 16000, fmt.channel_counts[0]), 16000)
        for name, fmt in FORMATS.items()
    }


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(FORMATS)),
    position=st.floats(0.0, 1.0),
    replacement=st.binary(min_size=1, max_size=64),
    cut=st.booleans(),
)
def test_mutated_files_only_raise_service_errors(
    samples_of_each_format: dict[str, bytes],
    name: str,
    position: float,
    replacement: bytes,
    cut: bool,
) -> None:
    data = samples_of_each_format[name]
    at = int(position * (len(data) - 1))
    mutated = data[:at] if cut else data[:at] + replacement + data[at + len(replacement) :]
    try:
        decoded = decode_audio(mutated, LIMITS)
    except ServiceError:
        return
    assert decoded.signal.ndim == 2 and decoded.signal.dtype == np.float32
