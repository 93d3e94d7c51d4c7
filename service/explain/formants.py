"""Formant frequencies F1-F3 by linear prediction, with Praat's ``To Formant (burg)`` settings.

Praat manual, "Sound: To Formant (burg)...": resample to twice the formant ceiling (5500 Hz,
the default), pre-emphasise from 50 Hz, Gaussian window of 2 x 25 ms, LPC of order twice the
number of formants (5), formants are the angles of the complex poles between 50 Hz and the
ceiling minus 50 Hz. Here the predictor comes from the autocorrelation method (Levinson-Durbin,
Makhoul 1975) instead of Burg's, which gives nearly the same poles on a Gaussian-windowed frame
and vectorises over frames.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

import numpy as np
from scipy.signal import resample_poly

from service.explain.framing import FloatArray, IntArray, frames_around_centres

FORMANT_CEILING_HZ: Final[float] = 5500.0  # Praat default "formant ceiling" (adult female)
MAX_FORMANTS: Final[int] = 5  # Praat default "maximum number of formants"
WINDOW_S: Final[float] = 0.050  # Praat: window length 0.025 s means a 0.05 s Gaussian
PRE_EMPHASIS_FROM_HZ: Final[float] = 50.0  # Praat default "pre-emphasis from"
MIN_FORMANT_HZ: Final[float] = 50.0  # Praat drops poles below 50 Hz ...
CEILING_MARGIN_HZ: Final[float] = 50.0  # ... and above the ceiling minus 50 Hz
FORMANTS_REPORTED: Final[int] = 3  # F1-F3, as eGeMAPS
_GAUSSIAN_EDGE: Final[float] = float(np.exp(-12.0))  # Praat's Gaussian window: exp(-12 x^2)


def formant_tracks(
    signal: FloatArray, sampling_rate_hz: int, hop: int, frames: IntArray
) -> FloatArray:
    """F1-F3 (Hz) of the given frames of the grid.

    Args:
        signal: shape ``(samples,)``.
        sampling_rate_hz: rate of ``signal`` (at least twice the formant ceiling).
        hop: grid step in samples at ``sampling_rate_hz``.
        frames: grid indices to analyse, shape ``(n,)`` (the voiced frames).

    Returns:
        Shape ``(n, 3)``; NaN where fewer poles than that were found.
    """
    out = np.full((frames.size, FORMANTS_REPORTED), np.nan)
    if frames.size == 0:
        return out
    analysis_rate_hz = 2.0 * FORMANT_CEILING_HZ
    resampled = _resample(signal, sampling_rate_hz, analysis_rate_hz)
    emphasised = _pre_emphasise(resampled, analysis_rate_hz)
    window_samples = round(WINDOW_S * analysis_rate_hz)
    centres = np.round(frames * hop * analysis_rate_hz / sampling_rate_hz).astype(np.int64)
    windows = frames_around_centres(emphasised, window_samples, 1)
    segments = windows[np.clip(centres, 0, windows.shape[0] - 1)] * _gaussian(window_samples)
    coefficients = _levinson(_autocorrelation(segments, 2 * MAX_FORMANTS))
    return _pole_frequencies(coefficients, analysis_rate_hz)


def _resample(signal: FloatArray, from_hz: int, to_hz: float) -> FloatArray:
    """Polyphase resampling by the nearest small rational factor."""
    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    if ratio == 1:
        return signal
    return np.asarray(resample_poly(signal, ratio.numerator, ratio.denominator), dtype=np.float64)


def _pre_emphasise(signal: FloatArray, sampling_rate_hz: float) -> FloatArray:
    """First-order pre-emphasis ``x[n] - a x[n-1]``, ``a = exp(-2 pi 50 Hz / rate)`` (Praat)."""
    a = np.exp(-2.0 * np.pi * PRE_EMPHASIS_FROM_HZ / sampling_rate_hz)
    out = signal.copy()
    out[1:] -= a * signal[:-1]
    return out


def _gaussian(n: int) -> FloatArray:
    """Praat's Gaussian window: (exp(-12 (t/T - 1/2)^2) - e^-12) / (1 - e^-12)."""
    phase = (np.arange(n) + 0.5) / n - 0.5
    return (np.exp(-12.0 * phase**2) - _GAUSSIAN_EDGE) / (1.0 - _GAUSSIAN_EDGE)


def _autocorrelation(segments: FloatArray, order: int) -> FloatArray:
    """Autocorrelation lags ``0..order`` of each row, shape ``(rows, order + 1)``."""
    n = segments.shape[1]
    return np.stack(
        [np.einsum("ij,ij->i", segments[:, : n - k], segments[:, k:]) for k in range(order + 1)],
        axis=1,
    )


def _levinson(acf: FloatArray) -> FloatArray:
    """Predictor ``a`` (``a[:, 0] = 1``) from autocorrelations, Levinson-Durbin, per row."""
    rows, order = acf.shape[0], acf.shape[1] - 1
    a = np.zeros((rows, order + 1))
    a[:, 0] = 1.0
    error = acf[:, 0] * (1.0 + 1e-9) + 1e-30  # tiny white-noise floor keeps silence stable
    for i in range(1, order + 1):
        # k_i = -(r_i + sum_j a_j r_(i-j)) / E ; a_j += k_i a_(i-j) ; E *= 1 - k_i^2
        reflection = -np.einsum("ij,ij->i", a[:, :i], acf[:, i:0:-1]) / error
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + reflection[:, None] * a[:, i - 1 :: -1]
        error = error * (1.0 - reflection**2)
    return a


def _pole_frequencies(coefficients: FloatArray, sampling_rate_hz: float) -> FloatArray:
    """Lowest three pole frequencies (Hz) within Praat's range, per row; NaN if missing."""
    order = coefficients.shape[1] - 1
    companion = np.zeros((coefficients.shape[0], order, order))
    companion[:, 0, :] = -coefficients[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    poles = np.linalg.eigvals(companion)
    freqs_hz = np.angle(poles) * sampling_rate_hz / (2.0 * np.pi)
    usable = (
        (poles.imag > 0.0)
        & (freqs_hz >= MIN_FORMANT_HZ)
        & (freqs_hz <= FORMANT_CEILING_HZ - CEILING_MARGIN_HZ)
    )
    ordered = np.sort(np.where(usable, freqs_hz, np.inf), axis=1)[:, :FORMANTS_REPORTED]
    return np.where(np.isfinite(ordered), ordered, np.nan)
