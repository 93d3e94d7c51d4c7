"""Speech rate from syllable nuclei, and pauses: the method of de Jong & Wempe (2009).

de Jong, N. H., & Wempe, T. (2009). "Praat script to detect syllable nuclei and measure speech
rate automatically." Behavior Research Methods 41(2): 385-390. Syllable nuclei are peaks of
the intensity contour that stand above a silence threshold (25 dB under the 99th-percentile
intensity), that are followed by a dip of at least 2 dB before the next peak, and that fall in
a voiced frame. Pauses are silent stretches (under the same threshold) of at least 0.3 s, after
sounding bits shorter than 0.1 s are counted as silence (the script's ``To TextGrid
(silences)`` settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from service.explain.framing import BoolArray, FloatArray, frames_around_centres, true_runs

INTENSITY_MIN_PITCH_HZ: Final[float] = 50.0  # de Jong & Wempe: "To Intensity: 50, ..."
INTENSITY_WINDOW_PERIODS: Final[float] = 6.4
"""Praat's ``Sound: To Intensity`` window: a Kaiser window 6.4 / minimum pitch long (128 ms;
the manual's "3.2 / minimum pitch" is its effective length)."""
KAISER_BETA: Final[float] = 2.0 * np.pi**2 + 0.5  # Praat Sound_to_Intensity's Kaiser shape
SILENCE_BELOW_Q99_DB: Final[float] = 25.0  # de Jong & Wempe "silence threshold -25 dB"
INTENSITY_QUANTILE: Final[float] = 0.99  # ... relative to the 0.99 quantile of intensity
MIN_DIP_DB: Final[float] = 2.0  # de Jong & Wempe "minimum dip between peaks (dB)"
MIN_PAUSE_S: Final[float] = 0.3  # de Jong & Wempe "minimum pause duration (s)"
MIN_SOUNDING_S: Final[float] = 0.1  # "To TextGrid (silences)": minimum sounding interval
REFERENCE_PRESSURE: Final[float] = 2e-5  # 20 micropascal, Praat's dB reference (full scale 1)
_POWER_FLOOR: Final[float] = 1e-20  # keeps log10 finite in digital silence (-94 dB re 20 uPa)


@dataclass(frozen=True)
class RateTracks:
    """Per-frame rhythm tracks; every array has shape ``(frames,)``.

    Attributes:
        intensity_db: intensity in dB re 2e-5 (full-scale 1 signal units).
        nucleus: True at frames holding a syllable nucleus.
        pause: True at frames inside a pause (a silence of at least 0.3 s).
        in_utterance: True from the first to the last sounding frame (leading and trailing
            silence are not part of the utterance, so they count neither as pause nor time).
    """

    intensity_db: FloatArray
    nucleus: BoolArray
    pause: BoolArray
    in_utterance: BoolArray


def rate_tracks(
    signal: FloatArray, sampling_rate_hz: int, hop: int, voiced: BoolArray
) -> RateTracks:
    """Syllable nuclei and pauses of ``signal`` (shape ``(samples,)``) on the frame grid.

    ``voiced`` is the pitch tracker's voicing per frame, shape ``(frames,)``.
    """
    intensity_db = _intensity_db(signal, sampling_rate_hz, hop)
    threshold_db = max(
        float(np.quantile(intensity_db, INTENSITY_QUANTILE)) - SILENCE_BELOW_Q99_DB,
        float(intensity_db.min()),
    )
    sounding = _fill_short_runs(
        intensity_db > threshold_db, round(MIN_SOUNDING_S / _hop_s(hop, sampling_rate_hz))
    )
    in_utterance = _between_first_and_last(sounding)
    pause = _long_runs(~sounding, round(MIN_PAUSE_S / _hop_s(hop, sampling_rate_hz))) & in_utterance
    nucleus = _nuclei(intensity_db, threshold_db) & voiced
    return RateTracks(intensity_db, nucleus, pause, in_utterance)


def _hop_s(hop: int, sampling_rate_hz: int) -> float:
    return hop / sampling_rate_hz


def _intensity_db(signal: FloatArray, sampling_rate_hz: int, hop: int) -> FloatArray:
    """Kaiser-weighted mean power of mean-removed 128 ms windows, in dB re 2e-5 (Praat)."""
    window_s = INTENSITY_WINDOW_PERIODS / INTENSITY_MIN_PITCH_HZ
    window_samples = max(2, round(window_s * sampling_rate_hz))
    window = np.kaiser(window_samples, KAISER_BETA)
    weight = window / window.sum()
    # weighted power about the window's weighted mean: sum w x^2 - (sum w x)^2, w summing to 1
    mean = frames_around_centres(signal, window_samples, hop) @ weight
    mean_square = frames_around_centres(signal * signal, window_samples, hop) @ weight
    power = np.maximum(mean_square - mean * mean, 0.0)
    return np.asarray(10.0 * np.log10(np.maximum(power, _POWER_FLOOR) / REFERENCE_PRESSURE**2))


def _nuclei(intensity_db: FloatArray, threshold_db: float) -> BoolArray:
    """Intensity peaks above the threshold with a dip of ``MIN_DIP_DB`` before the next peak."""
    out = np.zeros(intensity_db.shape, dtype=np.bool_)
    if intensity_db.size < 3:
        return out
    mid = intensity_db[1:-1]
    is_peak = (mid > intensity_db[:-2]) & (mid >= intensity_db[2:]) & (mid > threshold_db)
    peaks = np.flatnonzero(is_peak) + 1
    if peaks.size == 0:
        return out
    dips = np.minimum.reduceat(intensity_db, peaks)  # minimum from each peak to the next one
    out[peaks[intensity_db[peaks] - dips > MIN_DIP_DB]] = True
    return out


def _fill_short_runs(flags: BoolArray, min_frames: int) -> BoolArray:
    """``flags`` with runs of True shorter than ``min_frames`` set to False."""
    out = flags.copy()
    for start, stop in true_runs(flags):
        if stop - start < min_frames:
            out[start:stop] = False
    return out


def _long_runs(flags: BoolArray, min_frames: int) -> BoolArray:
    """Only the runs of True that last at least ``min_frames``."""
    out = np.zeros_like(flags)
    for start, stop in true_runs(flags):
        if stop - start >= min_frames:
            out[start:stop] = True
    return out


def _between_first_and_last(flags: BoolArray) -> BoolArray:
    """True from the first to the last True of ``flags`` (all False if there is none)."""
    out = np.zeros_like(flags)
    hits = np.flatnonzero(flags)
    if hits.size:
        out[hits[0] : hits[-1] + 1] = True
    return out
