"""Loudness and spectral balance per frame, as the eGeMAPS low-level descriptors.

Eyben et al. (2016), "The Geneva Minimalistic Acoustic Parameter Set (GeMAPS) for voice
research and affective computing", IEEE Trans. Affective Computing 7(2), section 3.1, and the
openSMILE configuration that implements it (``GeMAPSv01b_core.lld.conf.inc``): 20 ms Hamming
frames every 10 ms, zero-padded to a power of two, power spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

import numpy as np

from service.explain.framing import FloatArray, frames_around_centres

SlopeConvention = Literal["egemaps", "least_squares"]

FRAME_S: Final[float] = 0.020  # eGeMAPS "frame25" level: frameSize = 0.020 s, Hamming window
ALPHA_LOW_HZ: Final[tuple[float, float]] = (50.0, 1000.0)  # Eyben et al. 2016: alpha ratio
ALPHA_HIGH_HZ: Final[tuple[float, float]] = (1000.0, 5000.0)  # ... summed energy 1-5 kHz
HAMMARBERG_LOW_HZ: Final[tuple[float, float]] = (0.0, 2000.0)  # Hammarberg: peak 0-2 kHz
HAMMARBERG_HIGH_HZ: Final[tuple[float, float]] = (2000.0, 5000.0)  # ... over peak 2-5 kHz
SLOPE_BANDS_HZ: Final[tuple[tuple[float, float], ...]] = ((0.0, 500.0), (500.0, 1500.0))
"""eGeMAPS spectral slopes: linear regression of the dB power spectrum over 0-500 Hz and
500-1500 Hz (openSMILE ``slopes[0] = 0-500``, ``slopes[1] = 500-1500``)."""
MEL_BANDS: Final[int] = 26  # eGeMAPS loudness: cMelspec nBands = 26
MEL_LOW_HZ: Final[float] = 20.0  # cMelspec lofreq = 20
MEL_HIGH_HZ: Final[float] = 8000.0  # cMelspec hifreq = 8000
LOUDNESS_COMPRESSION: Final[float] = 0.33  # cPlp compression = 0.33 (power law of hearing)
LOUDNESS_SCALE: Final[float] = 0.0633
"""Puts loudness on openSMILE's eGeMAPS scale (whose FFT and filter normalisation differ from
the plain ones here by a constant): the median ratio openSMILE 2.6 / ours over the 40 test
clips of ``tests/service/explain/test_cues.py`` (spread about +-3 %)."""
POWER_FLOOR: Final[float] = 1e-12
"""Power below this (about -120 dB re a full-scale sine's bin) counts as this, so silent bins
give finite logarithms (openSMILE uses a spectral floor for the same reason)."""


@dataclass(frozen=True)
class SpectralTracks:
    """Per-frame loudness and spectral balance; every array has shape ``(frames,)``.

    Attributes:
        loudness: eGeMAPS loudness, sum over 26 mel bands of the equal-loudness-weighted band
            power to the power 0.33 (arbitrary auditory units).
        alpha_ratio_db: 10 log10(energy 1-5 kHz / energy 50-1000 Hz).
        hammarberg_index_db: 10 log10(peak power 0-2 kHz / peak power 2-5 kHz).
        slope_0_500_db_hz, slope_500_1500_db_hz: regression slope of the dB spectrum (dB/Hz).
    """

    loudness: FloatArray
    alpha_ratio_db: FloatArray
    hammarberg_index_db: FloatArray
    slope_0_500_db_hz: FloatArray
    slope_500_1500_db_hz: FloatArray


def spectral_tracks(
    signal: FloatArray, sampling_rate_hz: int, hop: int, slope_convention: SlopeConvention
) -> SpectralTracks:
    """Loudness and spectral-balance tracks of ``signal`` (shape ``(samples,)``, full scale 1).

    ``slope_convention`` picks how the spectral slopes are regressed (see
    :func:`_slope_db_per_hz`).
    """
    window_samples = max(2, round(FRAME_S * sampling_rate_hz))
    n_fft = 1 << int(np.ceil(np.log2(window_samples)))
    frames = frames_around_centres(signal, window_samples, hop)
    spectrum = np.fft.rfft(frames * np.hamming(window_samples), n_fft, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate_hz).astype(np.float64)
    return SpectralTracks(
        loudness=_loudness(power, sampling_rate_hz, n_fft),
        alpha_ratio_db=_energy_ratio_db(power, freqs_hz, ALPHA_HIGH_HZ, ALPHA_LOW_HZ),
        hammarberg_index_db=_peak_ratio_db(power, freqs_hz, HAMMARBERG_LOW_HZ, HAMMARBERG_HIGH_HZ),
        slope_0_500_db_hz=_slope_db_per_hz(power, freqs_hz, SLOPE_BANDS_HZ[0], slope_convention),
        slope_500_1500_db_hz=_slope_db_per_hz(power, freqs_hz, SLOPE_BANDS_HZ[1], slope_convention),
    )


def _band(freqs_hz: FloatArray, band_hz: tuple[float, float]) -> FloatArray:
    """Boolean selector of the bins with ``low <= f < high`` (``high`` included at 5 kHz)."""
    low, high = band_hz
    upper = freqs_hz <= high if high >= 5000.0 else freqs_hz < high
    return np.asarray((freqs_hz >= low) & upper)


def _energy_ratio_db(
    power: FloatArray,
    freqs_hz: FloatArray,
    top_hz: tuple[float, float],
    bottom_hz: tuple[float, float],
) -> FloatArray:
    """10 log10 of the summed power in one band over the summed power in another."""
    top = power[:, _band(freqs_hz, top_hz)].sum(axis=1)
    bottom = power[:, _band(freqs_hz, bottom_hz)].sum(axis=1)
    return _ratio_db(top, bottom)


def _peak_ratio_db(
    power: FloatArray,
    freqs_hz: FloatArray,
    top_hz: tuple[float, float],
    bottom_hz: tuple[float, float],
) -> FloatArray:
    """10 log10 of the strongest bin's power in one band over the strongest in another."""
    top = power[:, _band(freqs_hz, top_hz)].max(axis=1)
    bottom = power[:, _band(freqs_hz, bottom_hz)].max(axis=1)
    return _ratio_db(top, bottom)


def _ratio_db(top: FloatArray, bottom: FloatArray) -> FloatArray:
    ratio = np.maximum(top, POWER_FLOOR) / np.maximum(bottom, POWER_FLOOR)
    return np.asarray(10.0 * np.log10(ratio), dtype=np.float64)


def _slope_db_per_hz(
    power: FloatArray,
    freqs_hz: FloatArray,
    band_hz: tuple[float, float],
    convention: SlopeConvention,
) -> FloatArray:
    """Regression slope (dB/Hz) of 10 log10(power) against frequency, bins ``low <= f <= high``.

    ``"least_squares"`` is the ordinary least-squares slope. ``"egemaps"`` reproduces
    openSMILE's ``cSpectral`` (which computes the eGeMAPS slopes): its normal equations count
    one bin fewer than they sum (``Nind = idxR - idxL``), which adds ``-sum(f) / D`` dB/Hz per dB
    of overall level (D the equations' determinant), so the value also grows more negative as
    the recording gets louder. Checked frame by frame against openSMILE 2.6 (r = 1.000).
    """
    selected = (freqs_hz >= band_hz[0]) & (freqs_hz <= band_hz[1])
    f = freqs_hz[selected]
    level_db = 10.0 * np.log10(np.maximum(power[:, selected], POWER_FLOOR))
    count = f.size - 1 if convention == "egemaps" else f.size
    numerator = count * (level_db @ f) - f.sum() * level_db.sum(axis=1)
    denominator = count * float(f @ f) - float(f.sum()) ** 2
    return np.asarray(numerator / denominator, dtype=np.float64)


def _loudness(power: FloatArray, sampling_rate_hz: int, n_fft: int) -> FloatArray:
    """eGeMAPS loudness: sum of (equal-loudness weight x mel band power) ** 0.33."""
    weights, centres_hz = _mel_filterbank(sampling_rate_hz, n_fft)
    bands = power @ weights.T
    weighted = np.maximum(bands, 0.0) * _equal_loudness(centres_hz)
    loudness = np.sum(weighted**LOUDNESS_COMPRESSION, axis=1)
    return np.asarray(LOUDNESS_SCALE * loudness, dtype=np.float64)


def _hz_to_mel(f_hz: FloatArray) -> FloatArray:
    """Mel scale of O'Shaughnessy (1987), 1127 ln(1 + f / 700), as openSMILE's cMelspec."""
    return np.asarray(1127.0 * np.log1p(f_hz / 700.0), dtype=np.float64)


def _mel_to_hz(mel: FloatArray) -> FloatArray:
    return np.asarray(700.0 * np.expm1(mel / 1127.0), dtype=np.float64)


@lru_cache(maxsize=8)
def _mel_filterbank(sampling_rate_hz: int, n_fft: int) -> tuple[FloatArray, FloatArray]:
    """Triangular mel filters, shape ``(MEL_BANDS, n_fft // 2 + 1)``, and their centres (Hz)."""
    high_hz = min(MEL_HIGH_HZ, 0.5 * sampling_rate_hz)
    edges_mel = np.linspace(
        _hz_to_mel(np.array(MEL_LOW_HZ)), _hz_to_mel(np.array(high_hz)), MEL_BANDS + 2
    )
    edges_hz = _mel_to_hz(edges_mel)
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate_hz)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (freqs_hz - lower) / (centre - lower)
    falling = (upper - freqs_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights, edges_hz[1:-1]


def _equal_loudness(f_hz: FloatArray) -> FloatArray:
    """Hermansky (1990, PLP, eq. 4) equal-loudness curve, as openSMILE's cPlp ``doAud``.

    E(w) = (w^2 + 56.8e6) w^4 / ((w^2 + 6.3e6)^2 (w^2 + 0.38e9)), w = 2 pi f.
    """
    w2 = (2.0 * np.pi * f_hz) ** 2
    return np.asarray((w2 + 56.8e6) * w2**2 / ((w2 + 6.3e6) ** 2 * (w2 + 0.38e9)), dtype=np.float64)
