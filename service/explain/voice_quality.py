"""Glottal pulses, jitter, shimmer and harmonics-to-noise ratio, after Praat's definitions.

Pulses follow the idea of Praat's ``Sound & Pitch: To PointProcess (cc)`` (Praat manual;
Boersma 1993): in each voiced stretch, start at the absolute extremum nearest its middle, then
walk period by period to both sides, putting each next pulse where the waveform around it best
correlates with the waveform around the previous one (search 0.8-1.25 local periods away).
Jitter and shimmer are the Praat voice-report measures computed from those pulses (Praat
manual, "Voice 2. Jitter" and "Voice 3. Shimmer"), with Praat's default period limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from service.explain.framing import BoolArray, FloatArray, IntArray, true_runs

SHORTEST_PERIOD_S: Final[float] = 0.0001  # Praat voice report default "shortest period"
LONGEST_PERIOD_S: Final[float] = 0.02  # Praat default "longest period" (50 Hz)
MAX_PERIOD_FACTOR: Final[float] = 1.3  # Praat default "maximum period factor"
MAX_AMPLITUDE_FACTOR: Final[float] = 1.6  # Praat default "maximum amplitude factor"
SEARCH_NEAR_PERIODS: Final[float] = 0.8  # Praat cc pulse search: from 0.8 period away ...
SEARCH_FAR_PERIODS: Final[float] = 1.25  # ... to 1.25 periods away
MIN_PULSE_CORRELATION: Final[float] = 0.3  # Praat cc: weaker matches are skipped
MIN_EDGE_CORRELATION: Final[float] = 0.7  # Praat cc: a pulse past the stretch's edge needs this
MIN_PULSE_PEAK: Final[float] = 0.01  # Praat cc: fraction of the global peak a pulse must reach
MIN_EDGE_PEAK: Final[float] = 0.023333  # Praat cc: the same past the stretch's edge
RMS_WINDOW_FRACTION: Final[float] = 0.2
"""Shimmer amplitude of a pulse: Hann-windowed RMS from 0.2 of the previous period before it to
0.2 of the next after it (Praat ``PointProcess & Sound: To AmplitudeTier (period)``)."""
MIN_PERIOD_PAIRS: Final[int] = 5
"""Jitter and shimmer need at least this many valid consecutive-period (or amplitude) pairs in
the region, about 25-50 ms of voicing; Praat needs only 1, which makes a short region's value
mostly noise."""
HNR_R_LIMIT: Final[float] = 1e-6
"""``r`` is kept within [1e-6, 1 - 1e-6], so one frame's HNR lies within +-60 dB (Praat clips
at +-150 dB for r within 1e-15 of 0 or 1; the tighter clip keeps one near-periodic frame from
dominating a mean)."""


@dataclass(frozen=True)
class _Stretch:
    """Context for walking the pulses of one voiced stretch."""

    signal: FloatArray
    squares_cumsum: FloatArray  # cumsum of signal**2 with a leading 0
    f0_hz: FloatArray  # per frame, 0 where unvoiced
    hop: int
    sampling_rate_hz: int
    global_peak: float
    left: int  # first sample of the stretch
    right: int  # last sample of the stretch


def find_pulses(
    signal: FloatArray, f0_hz: FloatArray, hop: int, sampling_rate_hz: int
) -> FloatArray:
    """Glottal pulse times in seconds (sorted), shape ``(pulses,)``.

    Args:
        signal: shape ``(samples,)``.
        f0_hz: F0 per frame of the grid with step ``hop``, 0 where unvoiced.
    """
    if signal.size < 4:
        return np.zeros(0)
    squares = np.concatenate(([0.0], np.cumsum(signal * signal)))
    peak = float(np.max(np.abs(signal)))
    pulses: list[float] = []
    for start, stop in true_runs(f0_hz > 0.0):
        left = max(0, int(start) * hop - hop // 2)
        right = min(signal.size - 1, int(stop - 1) * hop + hop // 2)
        stretch = _Stretch(signal, squares, f0_hz, hop, sampling_rate_hz, peak, left, right)
        pulses.extend(_stretch_pulses(stretch, pulses[-1] if pulses else -np.inf))
    return np.array(sorted(pulses), dtype=np.float64) / sampling_rate_hz


def _f0_at(stretch: _Stretch, sample: float) -> float:
    """F0 (Hz) linearly interpolated between frames at ``sample``; 0 if its frame is unvoiced."""
    position = sample / stretch.hop
    nearest = round(position)
    f0 = stretch.f0_hz
    if nearest < 0 or nearest >= f0.size or f0[nearest] <= 0.0:
        return 0.0
    lo = min(max(int(np.floor(position)), 0), f0.size - 1)
    hi = min(lo + 1, f0.size - 1)
    if f0[lo] <= 0.0 or f0[hi] <= 0.0:
        return float(f0[nearest])
    weight = position - lo
    return float((1.0 - weight) * f0[lo] + weight * f0[hi])


def _stretch_pulses(stretch: _Stretch, last_added: float) -> list[float]:
    """Pulses (in samples) of one voiced stretch: from the middle extremum both ways."""
    middle = 0.5 * (stretch.left + stretch.right)
    f0 = _f0_at(stretch, middle)
    if f0 <= 0.0:
        return []
    half = 0.5 * stretch.sampling_rate_hz / f0
    lo, hi = max(0, int(middle - half)), min(stretch.signal.size, int(middle + half) + 1)
    first = float(lo + int(np.argmax(np.abs(stretch.signal[lo:hi]))))
    backward = _walk(stretch, first, -1, last_added)
    forward = _walk(stretch, first, +1, -np.inf)
    return [*backward, first, *forward]


def _walk(stretch: _Stretch, start: float, direction: int, last_added: float) -> list[float]:
    """Pulses found walking from ``start`` in ``direction`` (-1 or +1) to the stretch's edge."""
    found: list[float] = []
    position = start
    while True:
        f0 = _f0_at(stretch, position)
        if f0 <= 0.0:
            break
        period = stretch.sampling_rate_hz / f0
        correlation, position, peak = _best_match(stretch, position, period, direction)
        beyond = position < stretch.left if direction < 0 else position > stretch.right
        strong = correlation > MIN_EDGE_CORRELATION and peak > MIN_EDGE_PEAK * stretch.global_peak
        loud = peak > MIN_PULSE_PEAK * stretch.global_peak
        fresh = position - last_added > SEARCH_NEAR_PERIODS * period
        if beyond:
            if strong and fresh:
                found.append(position)
            break
        if correlation > MIN_PULSE_CORRELATION and loud and fresh:
            found.append(position)
    return found[::-1] if direction < 0 else found


def _best_match(
    stretch: _Stretch, reference: float, period: float, direction: int
) -> tuple[float, float, float]:
    """Where the next period starts: the best-correlating one-period window.

    Compares the one-period window centred on ``reference`` (samples) with windows centred
    0.8-1.25 periods away in ``direction``; returns (correlation, interpolated centre in
    samples, peak absolute amplitude in the best window). When no window fits in the signal,
    the centre moves one period on with correlation -1.
    """
    x = stretch.signal
    length = max(2, round(period))
    ref_start = round(reference - 0.5 * period)
    near = reference + direction * SEARCH_NEAR_PERIODS * period
    far = reference + direction * SEARCH_FAR_PERIODS * period
    first = max(0, math.floor(min(near, far) - 0.5 * period))
    last = min(x.size - length, math.ceil(max(near, far) - 0.5 * period))
    if ref_start < 0 or ref_start + length > x.size or last - first < 2:
        return -1.0, reference + direction * period, 0.0
    ref = x[ref_start : ref_start + length]
    products = np.correlate(x[first : last + length], ref, mode="valid")
    squares = stretch.squares_cumsum
    norms = squares[first + length : last + length + 1] - squares[first : last + 1]
    ref_norm = squares[ref_start + length] - squares[ref_start]
    r = products / np.sqrt(np.maximum(norms * ref_norm, 1e-300))
    best, shift, value = _interpolated_maximum(r)
    start = first + best
    peak = float(np.abs(x[start : start + length]).max())
    return value, reference + (start + shift - ref_start), peak


def _interpolated_maximum(r: FloatArray) -> tuple[int, float, float]:
    """Index, parabolic sub-sample shift and value of the highest interior local maximum.

    Falls back to the overall maximum (no shift) when ``r`` has no interior local maximum.
    """
    mid = r[1:-1]
    interior = np.where((mid >= r[:-2]) & (mid >= r[2:]), mid, -np.inf)
    best = int(interior.argmax()) + 1
    if interior[best - 1] == -np.inf:
        best = int(r.argmax())
        return best, 0.0, float(r[best])
    left, centre, right = float(r[best - 1]), float(r[best]), float(r[best + 1])
    curvature = 2.0 * centre - left - right
    if curvature == 0.0:
        return best, 0.0, centre
    slope = 0.5 * (right - left)
    return best, slope / curvature, centre + 0.5 * slope * slope / curvature


@dataclass(frozen=True)
class PeriodTable:
    """Per-pulse period measures; entry ``i`` belongs to pulse ``i`` (the middle of a triple).

    Attributes:
        time_s: pulse times, shape ``(pulses,)``.
        jitter_term: ``|T_i - T_{i+1}|`` in seconds where the triple is valid, else NaN.
        period_s: the period that starts at the pulse where it counts for the mean, else NaN.
        amplitude: Hann-windowed RMS around the pulse where the triple is valid, else NaN.
    """

    time_s: FloatArray
    jitter_term: FloatArray
    period_s: FloatArray
    amplitude: FloatArray


def period_table(pulses_s: FloatArray, signal: FloatArray, sampling_rate_hz: int) -> PeriodTable:
    """Period and amplitude measures of every pulse (see :class:`PeriodTable`)."""
    n = pulses_s.size
    nan = np.full(n, np.nan)
    if n < 3:
        return PeriodTable(pulses_s, nan, nan.copy(), nan.copy())
    periods = np.diff(pulses_s)
    before, after = periods[:-1], periods[1:]
    valid = _valid_pair(before, after)
    jitter = nan.copy()
    jitter[1:-1] = np.where(valid, np.abs(before - after), np.nan)
    amplitude = nan.copy()
    middle = np.flatnonzero(valid)
    amplitude[middle + 1] = _hann_rms(
        signal, pulses_s[middle + 1], before[middle], after[middle], sampling_rate_hz
    )
    return PeriodTable(pulses_s, jitter, _mean_periods(periods), amplitude)


def _in_range(period_s: FloatArray) -> BoolArray:
    return (period_s >= SHORTEST_PERIOD_S) & (period_s <= LONGEST_PERIOD_S)


def _valid_pair(before: FloatArray, after: FloatArray) -> BoolArray:
    """Both periods in range and within the maximum period factor of each other (Praat)."""
    factor = np.maximum(before, after) / np.maximum(np.minimum(before, after), 1e-12)
    return _in_range(before) & _in_range(after) & (factor <= MAX_PERIOD_FACTOR)


def _mean_periods(periods: FloatArray) -> FloatArray:
    """Periods that count for the mean period (Praat ``PointProcess_isPeriod``), per pulse.

    A period counts when it is in range and within the maximum period factor of each
    neighbouring period; entry ``i`` is the period from pulse ``i`` to ``i + 1``.
    """
    ok = _in_range(periods)
    ratio_prev = np.ones_like(periods)
    ratio_next = np.ones_like(periods)
    ratio_prev[1:] = np.maximum(periods[1:], periods[:-1]) / np.minimum(periods[1:], periods[:-1])
    ratio_next[:-1] = ratio_prev[1:]
    ok &= (ratio_prev <= MAX_PERIOD_FACTOR) & (ratio_next <= MAX_PERIOD_FACTOR)
    out = np.full(periods.size + 1, np.nan)
    out[:-1] = np.where(ok, periods, np.nan)
    return out


def _hann_rms(
    signal: FloatArray,
    centres_s: FloatArray,
    before_s: FloatArray,
    after_s: FloatArray,
    sampling_rate_hz: int,
) -> FloatArray:
    """Hann-windowed RMS around each centre, asymmetric half-widths 0.2 x the periods."""
    width_left = RMS_WINDOW_FRACTION * before_s * sampling_rate_hz
    width_right = RMS_WINDOW_FRACTION * after_s * sampling_rate_hz
    centre = centres_s * sampling_rate_hz
    if centre.size == 0:
        return np.zeros(0)
    span = int(np.ceil(np.max(np.concatenate((width_left, width_right))))) + 1
    offsets = np.arange(-span, span + 1)
    index = np.round(centre).astype(np.int64)[:, np.newaxis] + offsets
    distance = index - centre[:, np.newaxis]
    width = np.where(distance < 0.0, width_left[:, np.newaxis], width_right[:, np.newaxis])
    phase = distance / np.maximum(width, 1e-12)
    inside = (np.abs(phase) <= 1.0) & (index >= 0) & (index < signal.size)
    window = np.where(inside, 0.5 + 0.5 * np.cos(np.pi * phase), 0.0)
    values = signal[np.clip(index, 0, signal.size - 1)] * window
    window_energy = np.sum(window * window, axis=1)
    rms = np.sqrt(np.sum(values * values, axis=1) / np.maximum(window_energy, 1e-300))
    return np.asarray(rms, dtype=np.float64)


def jitter_local_pct(table: PeriodTable, selected: BoolArray) -> float | None:
    """Praat local jitter (%) over the selected pulses: mean |T_i - T_i+1| / mean period."""
    terms = table.jitter_term[selected]
    terms = terms[np.isfinite(terms)]
    periods = table.period_s[selected]
    periods = periods[np.isfinite(periods)]
    if terms.size < MIN_PERIOD_PAIRS or periods.size < 2:
        return None
    return float(100.0 * np.mean(terms) / np.mean(periods))


def shimmer_local_db(table: PeriodTable, selected: BoolArray) -> float | None:
    """Praat local shimmer (dB): mean |20 log10(A_i+1 / A_i)| over consecutive amplitudes.

    Consecutive amplitude points count when they are one valid period apart and their ratio is
    at most the maximum amplitude factor (Praat ``AmplitudeTier: Get shimmer (local_dB)``).
    """
    keep = selected & np.isfinite(table.amplitude) & (table.amplitude > 0.0)
    times, amplitudes = table.time_s[keep], table.amplitude[keep]
    if amplitudes.size < 2:
        return None
    gap = np.diff(times)
    ratio = amplitudes[1:] / amplitudes[:-1]
    valid = _in_range(gap) & (np.maximum(ratio, 1.0 / ratio) <= MAX_AMPLITUDE_FACTOR)
    if int(valid.sum()) < MIN_PERIOD_PAIRS:
        return None
    return float(np.mean(np.abs(20.0 * np.log10(ratio[valid]))))


def hnr_db(strength: FloatArray) -> FloatArray:
    """Harmonics-to-noise ratio (dB) from normalised autocorrelation: 10 log10(r / (1 - r)).

    Boersma (1993), eq. 4; ``strength`` of any shape, result of the same shape.
    """
    r = np.clip(strength, HNR_R_LIMIT, 1.0 - HNR_R_LIMIT)
    return np.asarray(10.0 * np.log10(r / (1.0 - r)), dtype=np.float64)


def pulse_frames(pulses_s: FloatArray, n_frames: int, hop: int, sampling_rate_hz: int) -> IntArray:
    """Index of the grid frame nearest to each pulse, shape ``(pulses,)``."""
    index = np.round(pulses_s * sampling_rate_hz / hop).astype(np.int64)
    return np.clip(index, 0, max(0, n_frames - 1))
