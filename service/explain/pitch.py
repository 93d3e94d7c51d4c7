"""F0 tracking: the autocorrelation method of Boersma (1993) with a Viterbi path, as in Praat.

Boersma, P. (1993). "Accurate short-term analysis of the fundamental frequency and the
harmonics-to-noise ratio of a sampled sound." Proc. Institute of Phonetic Sciences 17: 97-110.
Each 10 ms frame: a Hann-windowed, mean-removed stretch of three periods of the pitch floor;
its normalised autocorrelation divided by the window's (Boersma's eq. 9); local maxima in the
lag range of the pitch ceiling and floor are F0 candidates, with strength ``r`` minus an octave
cost; an "unvoiced" candidate's strength grows as the frame gets quieter; a Viterbi path picks
one candidate per frame, paying for octave jumps and voicing changes. Parameters are Praat's
``Sound: To Pitch (ac)...`` defaults (Praat manual), written out below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from service.explain.framing import BoolArray, FloatArray, IntArray, frames_around_centres

PITCH_FLOOR_HZ: Final[float] = 75.0  # Praat "To Pitch (ac)" default pitch floor
PITCH_CEILING_HZ: Final[float] = 600.0  # Praat default pitch ceiling
PERIODS_PER_WINDOW: Final[float] = 3.0  # Praat ac: window = 3 periods of the floor (40 ms)
SILENCE_THRESHOLD: Final[float] = 0.03  # Praat default, fraction of the global peak
VOICING_THRESHOLD: Final[float] = 0.45  # Praat default, autocorrelation strength
OCTAVE_COST: Final[float] = 0.01  # Praat default, per octave, favours high candidates
OCTAVE_JUMP_COST: Final[float] = 0.35  # Praat default, per octave jump between frames
VOICED_UNVOICED_COST: Final[float] = 0.14  # Praat default, per voicing change
MAX_VOICED_CANDIDATES: Final[int] = 8
"""Voiced candidates kept per frame (Praat keeps up to 14 besides the unvoiced one; the lower
ranks are almost never on the path, and 8 halves the Viterbi work)."""
_MIN_PEAK_R: Final[float] = 0.5 * VOICING_THRESHOLD  # Praat keeps peaks above half the threshold


@dataclass(frozen=True)
class PitchTrack:
    """F0 per frame of the 10 ms grid.

    Attributes:
        f0_hz: shape ``(frames,)``, F0 in Hz, 0 where unvoiced.
        voiced: shape ``(frames,)``, True where the path chose a voiced candidate.
        strength: shape ``(frames,)``, normalised autocorrelation ``r`` in [0, 1] at the best
            voiced lag of the frame (used for the harmonics-to-noise ratio).
        sounding: shape ``(frames,)``, frames whose peak is above the silence threshold.
    """

    f0_hz: FloatArray
    voiced: BoolArray
    strength: FloatArray
    sounding: BoolArray


@dataclass(frozen=True)
class _Candidates:
    """Per-frame candidate table; column 0 is the unvoiced candidate (frequency 0)."""

    frequency_hz: FloatArray  # (frames, 1 + K)
    strength: FloatArray  # (frames, 1 + K), -inf for empty slots


def track_pitch(signal: FloatArray, sampling_rate_hz: int, hop: int) -> PitchTrack:
    """F0 track of ``signal`` (shape ``(samples,)``) on the frame grid with step ``hop``."""
    centred = signal - float(np.mean(signal)) if signal.size else signal
    global_peak = float(np.max(np.abs(centred))) if centred.size else 0.0
    window_samples = round(PERIODS_PER_WINDOW / PITCH_FLOOR_HZ * sampling_rate_hz)
    frames = frames_around_centres(centred, window_samples, hop)
    r, lags = _normalised_autocorrelation(frames, sampling_rate_hz)
    relative_peak = _relative_local_peak(frames, sampling_rate_hz, global_peak)
    peak_lag, peak_r = _interpolated_peaks(r, lags)
    candidates = _candidate_table(peak_lag, peak_r, relative_peak, sampling_rate_hz)
    path = _viterbi(candidates)
    rows = np.arange(path.shape[0])
    f0_hz = candidates.frequency_hz[rows, path]
    best_r = np.where(np.isfinite(peak_r), peak_r, 0.0).max(axis=1, initial=0.0)
    return PitchTrack(
        f0_hz=f0_hz,
        voiced=path > 0,
        strength=np.clip(best_r, 0.0, 1.0),
        sounding=relative_peak >= SILENCE_THRESHOLD,
    )


def _normalised_autocorrelation(
    frames: FloatArray, sampling_rate_hz: int
) -> tuple[FloatArray, IntArray]:
    """Windowed autocorrelation over the window's (Boersma 1993, eq. 9).

    Returns ``r`` of shape ``(frames, lags)`` for integer lags ``lags`` (1-D) covering one
    sample beyond the pitch-ceiling and pitch-floor periods, so every lag has two neighbours.
    """
    window_samples = frames.shape[1]
    min_lag = max(2, int(np.floor(sampling_rate_hz / PITCH_CEILING_HZ)) - 1)
    max_lag = min(window_samples // 2, int(np.ceil(sampling_rate_hz / PITCH_FLOOR_HZ)) + 1)
    lags = np.arange(min_lag, max_lag + 1, dtype=np.int64)
    n_fft = 1 << int(np.ceil(np.log2(window_samples + max_lag + 1)))
    window = np.hanning(window_samples)
    local = frames - frames.mean(axis=1, keepdims=True)
    ac = _autocorrelation(local * window, n_fft)
    window_ac = _autocorrelation(window[np.newaxis, :], n_fft)[0]
    energy = ac[:, :1]
    safe_energy = np.where(energy > 0.0, energy, 1.0)
    r = (ac[:, lags] / safe_energy) / (window_ac[lags] / window_ac[0])
    r[energy[:, 0] <= 0.0] = 0.0
    return r, lags


def _autocorrelation(frames: FloatArray, n_fft: int) -> FloatArray:
    """Autocorrelation of each row (lags ``0 .. n_fft - 1``) by the Wiener-Khinchin theorem."""
    spectrum = np.fft.rfft(frames, n_fft, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.fft.irfft(power, n_fft, axis=1)


def _relative_local_peak(
    frames: FloatArray, sampling_rate_hz: int, global_peak: float
) -> FloatArray:
    """Peak of each frame's middle (half a floor period each side) over the global peak."""
    half_period = round(0.5 * sampling_rate_hz / PITCH_FLOOR_HZ)
    middle = frames.shape[1] // 2
    lo, hi = max(0, middle - half_period), min(frames.shape[1], middle + half_period + 1)
    core = frames[:, lo:hi] - frames.mean(axis=1, keepdims=True)
    local_peak = np.abs(core).max(axis=1)
    if global_peak <= 0.0:
        return np.zeros(frames.shape[0])
    return np.asarray(np.minimum(local_peak / global_peak, 1.0), dtype=np.float64)


def _interpolated_peaks(r: FloatArray, lags: IntArray) -> tuple[FloatArray, FloatArray]:
    """Parabolically interpolated local maxima of ``r`` (interior lags only).

    Returns lag (samples) and ``r`` at each interior lag position, NaN where there is no
    local maximum above half the voicing threshold; shapes ``(frames, lags - 2)``.
    """
    left, mid, right = r[:, :-2], r[:, 1:-1], r[:, 2:]
    is_peak = (mid > left) & (mid >= right) & (mid > _MIN_PEAK_R)
    curvature = left - 2.0 * mid + right
    safe_curvature = np.where(curvature < 0.0, curvature, -1.0)
    offset = np.clip(0.5 * (left - right) / safe_curvature, -0.5, 0.5)
    peak_r = mid - 0.25 * (left - right) * offset
    overshoot = peak_r > 1.0
    peak_r[overshoot] = 1.0 / peak_r[overshoot]  # Praat folds overshoots back below 1
    peak_lag = lags[1:-1][np.newaxis, :] + offset
    return np.where(is_peak, peak_lag, np.nan), np.where(is_peak, peak_r, np.nan)


def _candidate_table(
    peak_lag: FloatArray, peak_r: FloatArray, relative_peak: FloatArray, sampling_rate_hz: int
) -> _Candidates:
    """The unvoiced candidate plus the ``MAX_VOICED_CANDIDATES`` strongest voiced ones."""
    lag_s = peak_lag / sampling_rate_hz
    with np.errstate(invalid="ignore"):
        strength = peak_r - OCTAVE_COST * np.log2(PITCH_FLOOR_HZ * lag_s)
    strength = np.where(np.isfinite(strength), strength, -np.inf)
    k = min(MAX_VOICED_CANDIDATES, strength.shape[1])
    top = np.argpartition(-strength, k - 1, axis=1)[:, :k]  # k >= 1: the lag range is wide
    voiced_strength = np.take_along_axis(strength, top, axis=1)
    voiced_hz = np.where(
        np.isfinite(voiced_strength), 1.0 / np.take_along_axis(lag_s, top, axis=1), 0.0
    )
    # Praat's unvoiced strength: threshold + max(0, 2 - intensity / (silence / (1 + voicing)))
    excess = 2.0 - relative_peak / (SILENCE_THRESHOLD / (1.0 + VOICING_THRESHOLD))
    unvoiced = VOICING_THRESHOLD + np.maximum(0.0, excess)
    return _Candidates(
        frequency_hz=np.column_stack([np.zeros_like(unvoiced), voiced_hz]),
        strength=np.column_stack([unvoiced, voiced_strength]),
    )


def _transition_costs(frequency_hz: FloatArray) -> FloatArray:
    """Cost of going from each candidate of frame ``t-1`` to each of frame ``t``.

    Shape ``(frames - 1, 1 + K, 1 + K)``: octave-jump cost between voiced candidates,
    voiced/unvoiced cost across a voicing change, zero between unvoiced ones (Boersma 1993).
    """
    voiced = frequency_hz > 0.0
    log_f = np.log2(np.where(voiced, frequency_hz, 1.0))
    prev_v, cur_v = voiced[:-1, :, np.newaxis], voiced[1:, np.newaxis, :]
    jump = OCTAVE_JUMP_COST * np.abs(log_f[:-1, :, np.newaxis] - log_f[1:, np.newaxis, :])
    change = VOICED_UNVOICED_COST * (prev_v != cur_v)
    return np.asarray(np.where(prev_v & cur_v, jump, change), dtype=np.float64)


def _viterbi(candidates: _Candidates) -> IntArray:
    """Index of the chosen candidate per frame, maximising strengths minus transition costs."""
    strength = candidates.strength
    n_frames = strength.shape[0]
    costs = _transition_costs(candidates.frequency_hz)
    back = np.zeros(strength.shape, dtype=np.int64)
    score = strength[0].copy()
    for t in range(1, n_frames):  # one step per 10 ms frame, vectorised over candidates
        total = score[:, np.newaxis] - costs[t - 1]
        back[t] = np.argmax(total, axis=0)
        score = total[back[t], np.arange(strength.shape[1])] + strength[t]
    path = np.zeros(n_frames, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
