"""Recording quality: measured on the mono signal at its *original* sampling rate.

Runs before resampling so the bandwidth is the recording's, not the model's. Frames follow the
speech detector's frame length; a frame counts as speech when its centre lies in a detected
speech region. Every level is RMS relative to digital full scale 1.0 (dBFS here equals dBov:
a full-scale sine is -3.01 dBFS).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from service.speech.activity import SpeechActivity

POWER_FLOOR: Final[float] = 1e-10
"""-100 dBFS, just below 16-bit quantisation noise (LSB^2 / 12 = 7.8e-11, -101 dBFS): levels
and noise powers are floored here so silence gives finite numbers."""
CLIPPING_LEVEL: Final[float] = 0.99
"""|x| at or above 99 % of full scale (-0.09 dB) counts as full scale; int16 peaks at 0.99997."""
CLIPPING_MIN_RUN: Final[int] = 3
"""A clipped stretch is at least 3 consecutive full-scale samples: like sox ``stats``' flat
factor, clipping shows as *runs* at the peak level, while one or two samples are a peak."""
BANDWIDTH_ENERGY_SHARE: Final[float] = 0.999
"""Effective bandwidth = the spectral roll-off point at 99.9 % of the long-term speech energy
(Scheirer & Slaney 1997 use 95 % for music; speech energy sits below 1 kHz, so a lower share
measures the voice, not the channel). Measured on 65 RAVDESS and EmoDB clips: wideband
minimum 5.8 kHz; the same clips through an 8 kHz telephone path: maximum 3.8 kHz."""
MIN_FRAMES_PER_CLASS: Final[int] = 10
"""SNR needs at least 10 speech and 10 non-speech frames (0.3 s each at 30 ms)."""
NOISE_FLOOR_PERCENTILE: Final[float] = 10.0
"""Without detected pauses, the quietest 10 % of frames stand for the noise floor: a recording
rarely has less than 10 % pauses (RAVDESS clips: at least 30 % measured by the detector)."""
NOISE_FLOOR_MIN_FRAMES: Final[int] = 10 * MIN_FRAMES_PER_CLASS  # 10 frames below the percentile

TELEPHONE_BANDWIDTH_HZ: Final[float] = 4000.0
"""Narrowband telephony samples at 8 kHz (ITU-T G.711), so nothing above 4 kHz survives; its
nominal passband is 300-3400 Hz (ITU-T G.712)."""
LITTLE_SPEECH_RATIO: Final[float] = 0.3  # product issue "service core", item 4
CLIPPING_WARNING_RATIO: Final[float] = 0.001
"""Design choice: one clipped sample in a thousand (16 per second at 16 kHz) is a recording
driven into its limit, not an isolated peak."""
LOW_SNR_DB: Final[float] = 10.0  # product issue "service core", item 4
VERY_QUIET_DBFS: Final[float] = -56.0
"""30 dB below the -26 dBov nominal active speech level used in ITU-T P.56 practice (the
level speech test material is normalised to, e.g. ITU-T P.501)."""
DC_OFFSET_RELATIVE: Final[float] = 0.1
"""Design choice: warn when the mean is above a tenth (-20 dB) of the AC RMS and above one
16-bit LSB (``DC_OFFSET_MIN``): a converter or chain fault, not a property of speech."""
DC_OFFSET_MIN: Final[float] = 1.0 / 32768.0  # one 16-bit LSB
_SPECTRUM_CHUNK_FRAMES: Final[int] = 512  # frames per FFT batch (memory bound, not a tuning knob)


@dataclass(frozen=True)
class QualityReport:
    """Measured properties of one recording.

    ``clipping_ratio`` and ``speech_ratio`` are shares in [0, 1]; ``snr_db`` is ``None`` when
    there is too little speech or too little pause to tell them apart; ``loudness_dbfs`` is the
    speech-frame RMS level (all frames when no speech was found), floored at -100 dBFS;
    ``warnings`` are stable snake_case codes in a fixed order.
    """

    duration_s: float
    speech_ratio: float
    clipping_ratio: float
    snr_db: float | None
    bandwidth_hz: float
    loudness_dbfs: float
    warnings: tuple[str, ...]


def assess_quality(
    signal_mono: np.ndarray, sampling_rate_hz: int, speech: SpeechActivity
) -> QualityReport:
    """Quality of a mono float32 ``(samples,)`` signal at its original sampling rate.

    ``speech`` may come from a resampled copy of the same recording: only its region times are
    used. Memory: one float32 copy of the signal plus per-frame arrays.
    """
    if signal_mono.ndim != 1 or sampling_rate_hz <= 0:
        raise ValueError(f"need (samples,) and a positive rate, got {signal_mono.shape}")
    samples = np.asarray(signal_mono, dtype=np.float32)
    offset = float(np.mean(samples, dtype=np.float64)) if samples.size else 0.0
    frames = _frames(samples - np.float32(offset), sampling_rate_hz, speech.frame_s)
    is_speech = _speech_frame_mask(len(frames), speech, sampling_rate_hz, frames.shape[1])
    powers = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frames.shape[1]
    analysed = np.flatnonzero(is_speech) if is_speech.any() else np.arange(len(frames))
    report = QualityReport(
        duration_s=samples.size / sampling_rate_hz,
        speech_ratio=speech.speech_ratio,
        clipping_ratio=clipping_ratio(samples),
        snr_db=estimate_snr_db(powers, is_speech),
        bandwidth_hz=effective_bandwidth_hz(frames, analysed, sampling_rate_hz),
        loudness_dbfs=_level_db(powers[analysed]),
        warnings=(),
    )
    return _with_warnings(report, _has_dc_offset(offset, powers))


def _frames(samples: np.ndarray, sampling_rate_hz: int, frame_s: float) -> np.ndarray:
    """Whole frames ``(frames, frame_samples)`` (a view); a trailing partial frame is left out,
    unless the signal is shorter than one frame, which is then zero-padded to one."""
    frame_samples = max(1, round(frame_s * sampling_rate_hz))
    count = samples.size // frame_samples
    if count == 0:
        padded = np.zeros(frame_samples, dtype=np.float32)
        padded[: samples.size] = samples
        return padded.reshape(1, frame_samples)
    return samples[: count * frame_samples].reshape(count, frame_samples)


def _speech_frame_mask(
    count: int, speech: SpeechActivity, sampling_rate_hz: int, frame_samples: int
) -> np.ndarray:
    centres_s = (np.arange(count) + 0.5) * frame_samples / sampling_rate_hz
    mask = np.zeros(count, dtype=bool)
    for region in speech.regions:
        mask |= (centres_s >= region.start_s) & (centres_s < region.end_s)
    return mask


def _level_db(powers: np.ndarray) -> float:
    mean_power = float(powers.mean()) if powers.size else 0.0
    return 10.0 * float(np.log10(max(mean_power, POWER_FLOOR)))


def clipping_ratio(samples: np.ndarray) -> float:
    """Share of samples in runs of >= ``CLIPPING_MIN_RUN`` at |x| >= ``CLIPPING_LEVEL``."""
    if samples.size == 0:
        return 0.0
    at_full_scale = np.concatenate(([False], np.abs(samples) >= CLIPPING_LEVEL, [False]))
    edges = np.flatnonzero(np.diff(at_full_scale.astype(np.int8)))
    run_lengths = edges[1::2] - edges[::2]
    clipped = int(run_lengths[run_lengths >= CLIPPING_MIN_RUN].sum())
    return clipped / samples.size


def estimate_snr_db(frame_powers: np.ndarray, is_speech: np.ndarray) -> float | None:
    """Energy-based SNR in dB: speech-frame power over noise power.

    Noise power is the *median* power of the non-speech frames (robust to speech the detector
    missed). When the detector leaves fewer than ``MIN_FRAMES_PER_CLASS`` non-speech frames
    (in heavy noise it calls everything speech), it is the ``NOISE_FLOOR_PERCENTILE``-th
    percentile of all frame powers instead, the minimum-statistics idea (Martin 2001) in its
    simplest form. Speech power is the mean power of the speech frames (all frames in the
    fallback) minus the noise power. ``None`` with fewer than ``MIN_FRAMES_PER_CLASS`` speech
    frames, or too few frames for the fallback.
    """
    speech_powers, pause_powers = frame_powers[is_speech], frame_powers[~is_speech]
    if speech_powers.size < MIN_FRAMES_PER_CLASS:
        return None
    if pause_powers.size >= MIN_FRAMES_PER_CLASS:
        noise_power = float(np.median(pause_powers))
    elif frame_powers.size >= NOISE_FLOOR_MIN_FRAMES:
        noise_power = float(np.percentile(frame_powers, NOISE_FLOOR_PERCENTILE))
    else:
        return None
    noise_power = max(noise_power, POWER_FLOOR)
    clean_power = max(float(speech_powers.mean()) - noise_power, POWER_FLOOR)
    return 10.0 * float(np.log10(clean_power / noise_power))


def effective_bandwidth_hz(
    frames: np.ndarray, frame_indexes: np.ndarray, sampling_rate_hz: int
) -> float:
    """Roll-off frequency below which ``BANDWIDTH_ENERGY_SHARE`` of the energy lies.

    The spectrum is the mean Hann-windowed power spectrum of ``frames[frame_indexes]``
    (``frames`` is ``(frames, frame_samples)``), summed in chunks so memory stays small.
    0.0 for silence.
    """
    if frame_indexes.size == 0:
        return 0.0
    window = np.hanning(frames.shape[1]).astype(np.float32)
    spectrum = np.zeros(frames.shape[1] // 2 + 1)
    for first in range(0, frame_indexes.size, _SPECTRUM_CHUNK_FRAMES):
        chunk = frames[frame_indexes[first : first + _SPECTRUM_CHUNK_FRAMES]] * window
        spectrum += np.sum(np.abs(np.fft.rfft(chunk, axis=1)) ** 2, axis=0)
    total = float(spectrum.sum())
    if total <= 0.0:
        return 0.0
    index = int(np.searchsorted(np.cumsum(spectrum) / total, BANDWIDTH_ENERGY_SHARE))
    frequencies_hz = np.fft.rfftfreq(frames.shape[1], d=1.0 / sampling_rate_hz)
    return float(frequencies_hz[min(index, frequencies_hz.size - 1)])


def _has_dc_offset(offset: float, ac_powers: np.ndarray) -> bool:
    ac_rms = float(np.sqrt(ac_powers.mean())) if ac_powers.size else 0.0
    return abs(offset) > max(DC_OFFSET_RELATIVE * ac_rms, DC_OFFSET_MIN)


def _with_warnings(report: QualityReport, has_dc_offset: bool) -> QualityReport:
    checks = (
        ("telephone_band", 0.0 < report.bandwidth_hz < TELEPHONE_BANDWIDTH_HZ),
        ("little_speech", report.speech_ratio < LITTLE_SPEECH_RATIO),
        ("clipping", report.clipping_ratio >= CLIPPING_WARNING_RATIO),
        ("low_snr", report.snr_db is not None and report.snr_db < LOW_SNR_DB),
        ("very_quiet", report.loudness_dbfs < VERY_QUIET_DBFS),
        ("dc_offset", has_dc_offset),
    )
    warnings = tuple(name for name, applies in checks if applies)
    return replace(report, warnings=warnings)
