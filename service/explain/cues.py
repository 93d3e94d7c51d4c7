"""Expert-referenced acoustic cues of a stretch of speech (eGeMAPS definitions).

``measure_cues`` measures every cue of :data:`CUE_UNITS` in the part of a signal that a mask
selects (the salient regions of an explanation); ``measure_cues_inside_and_outside`` measures
inside and elsewhere from one analysis. The analysis runs once per signal on a shared 10 ms
frame grid (see ``framing.py``) and the mask only chooses which frames, pulses and nuclei
count, so the two regions are measured consistently. Definitions and references per cue are in
``docs/cues.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from service.errors import InvalidParameter, InvalidSamples, SamplingRateTooLow
from service.explain.formants import FORMANT_CEILING_HZ, formant_tracks
from service.explain.framing import (
    BoolArray,
    FloatArray,
    frame_mask_from_samples,
    hop_samples,
)
from service.explain.pitch import PitchTrack, track_pitch
from service.explain.rate import RateTracks, rate_tracks
from service.explain.spectral import SlopeConvention, SpectralTracks, spectral_tracks
from service.explain.voice_quality import (
    PeriodTable,
    find_pulses,
    hnr_db,
    jitter_local_pct,
    period_table,
    pulse_frames,
    shimmer_local_db,
)

CUE_UNITS: Final[dict[str, str]] = {
    "f0_mean_st": "st re 27.5 Hz",
    "f0_range_st": "st",
    "loudness_mean": "sone (eGeMAPS auditory loudness)",
    "loudness_cv": "ratio",
    "speech_rate_syl_s": "syllables/s",
    "pause_ratio": "ratio",
    "jitter_local_pct": "%",
    "shimmer_local_db": "dB",
    "hnr_db": "dB",
    "alpha_ratio_db": "dB",
    "hammarberg_index_db": "dB",
    "spectral_slope_0_500": "dB/Hz",
    "spectral_slope_500_1500": "dB/Hz",
    "f1_hz": "Hz",
    "f2_hz": "Hz",
    "f3_hz": "Hz",
}
"""Every cue's stable name (the API exposes these) and unit, in presentation order."""

SEMITONE_REFERENCE_HZ: Final[float] = 27.5  # eGeMAPS F0 semitone scale: 0 st = 27.5 Hz (A0)
F0_RANGE_PERCENTILES: Final[tuple[float, float]] = (20.0, 80.0)  # eGeMAPS pctlrange0-2
MIN_SAMPLING_RATE_HZ: Final[int] = int(2 * FORMANT_CEILING_HZ)
"""11 kHz: formants are sought up to 5.5 kHz and the alpha ratio needs energy up to 5 kHz."""
MIN_VOICED_FRAMES: Final[int] = 5
"""Fewer voiced 10 ms frames than this (50 ms, about one short vowel) in a region leave the
voiced cues unmeasured (None)."""
MIN_RATE_DURATION_S: Final[float] = 0.25
"""Speech rate and pause ratio need at least this much of the utterance in the region (one
syllable lasts about 0.2 s)."""


@dataclass(frozen=True)
class CueValue:
    """One measured cue: ``value`` in ``unit``, or None when it could not be measured."""

    name: str
    unit: str
    value: float | None


class CueSet(Mapping[str, CueValue]):
    """Read-only mapping from cue name to :class:`CueValue`, in :data:`CUE_UNITS` order."""

    def __init__(self, values: Mapping[str, float | None]) -> None:
        self._cues = {
            name: CueValue(name, unit, _finite_or_none(values.get(name)))
            for name, unit in CUE_UNITS.items()
        }

    def __getitem__(self, name: str) -> CueValue:
        return self._cues[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cues)

    def __len__(self) -> int:
        return len(self._cues)

    def values_by_name(self) -> dict[str, float | None]:
        """Plain ``{name: value}`` dictionary."""
        return {name: cue.value for name, cue in self._cues.items()}


@dataclass(frozen=True)
class RegionCues:
    """Cues measured inside a mask and in the rest of the same signal."""

    inside: CueSet
    elsewhere: CueSet


@dataclass(frozen=True)
class CueTracks:
    """Every frame-level track of one signal, on the 10 ms grid (``frames`` long).

    Attributes:
        pitch: F0, voicing and autocorrelation strength per frame.
        spectral: loudness and spectral balance per frame.
        rate: intensity, syllable nuclei and pauses per frame.
        formants_hz: F1-F3 per frame, shape ``(frames, 3)``, NaN where unvoiced or untracked.
        periods: per-pulse jitter and shimmer terms.
        pulse_frame: grid frame of each pulse, shape ``(pulses,)``.
        hop_samples: frame step in samples.
        sampling_rate_hz: rate of the analysed signal.
    """

    pitch: PitchTrack
    spectral: SpectralTracks
    rate: RateTracks
    formants_hz: FloatArray
    periods: PeriodTable
    pulse_frame: npt.NDArray[np.int64]
    hop_samples: int
    sampling_rate_hz: int

    @property
    def hop_s(self) -> float:
        """Frame step in seconds."""
        return self.hop_samples / self.sampling_rate_hz

    @property
    def frame_count(self) -> int:
        """Frames on the grid."""
        return int(self.pitch.f0_hz.shape[0])


def measure_cues(
    signal: npt.NDArray[np.floating],
    sampling_rate_hz: int,
    mask: npt.NDArray[np.bool_] | None = None,
    *,
    slope_convention: SlopeConvention = "egemaps",
) -> CueSet:
    """Acoustic cues of the part of ``signal`` that ``mask`` selects.

    Args:
        signal: mono speech, shape ``(samples,)``, float, full scale 1.
        sampling_rate_hz: at least 11 kHz.
        mask: boolean, shape ``(samples,)``: the samples to measure (e.g. the salient regions);
            None measures the whole signal. Frame ``k`` (10 ms grid) counts when the sample at
            its centre is selected; a pulse or nucleus counts when its frame does.
        slope_convention: ``"egemaps"`` (default) reproduces openSMILE's spectral slopes,
            ``"least_squares"`` gives the gain-independent least-squares slope (see
            ``spectral.py``).

    Returns:
        Every cue of :data:`CUE_UNITS`; a value is None when the region has too little of
        what the cue needs (voiced frames, pulses, utterance time).

    Raises:
        InvalidParameter: ``signal`` is not 1-D, or ``mask`` has another shape.
        InvalidSamples: ``signal`` holds NaN or infinite values.
        SamplingRateTooLow: ``sampling_rate_hz`` is under 11 kHz.
    """
    tracks = analyse_cues(signal, sampling_rate_hz, slope_convention=slope_convention)
    return summarise_cues(tracks, _frame_mask(tracks, mask, np.asarray(signal).shape[0]))


def measure_cues_inside_and_outside(
    signal: npt.NDArray[np.floating],
    sampling_rate_hz: int,
    mask: npt.NDArray[np.bool_],
    *,
    slope_convention: SlopeConvention = "egemaps",
) -> RegionCues:
    """Cues inside ``mask`` and elsewhere (``~mask``), from one analysis of ``signal``.

    Arguments and errors as :func:`measure_cues`.
    """
    tracks = analyse_cues(signal, sampling_rate_hz, slope_convention=slope_convention)
    inside = _frame_mask(tracks, mask, np.asarray(signal).shape[0])
    return RegionCues(summarise_cues(tracks, inside), summarise_cues(tracks, ~inside))


def interval_mask(
    intervals_s: list[tuple[float, float]], n_samples: int, sampling_rate_hz: int
) -> BoolArray:
    """Sample mask, shape ``(n_samples,)``, True inside any ``(start_s, end_s)`` interval."""
    mask = np.zeros(n_samples, dtype=np.bool_)
    for start_s, end_s in intervals_s:
        start = max(0, round(start_s * sampling_rate_hz))
        mask[start : max(start, round(end_s * sampling_rate_hz))] = True
    return mask


def analyse_cues(
    signal: npt.NDArray[np.floating],
    sampling_rate_hz: int,
    *,
    slope_convention: SlopeConvention = "egemaps",
) -> CueTracks:
    """Run every frame-level analysis once (arguments and errors as :func:`measure_cues`)."""
    x = _validated_signal(signal, sampling_rate_hz)
    hop = hop_samples(sampling_rate_hz)
    pitch = track_pitch(x, sampling_rate_hz, hop)
    pulses_s = find_pulses(x, pitch.f0_hz, hop, sampling_rate_hz)
    formants = np.full((pitch.f0_hz.shape[0], 3), np.nan)
    voiced_frames = np.flatnonzero(pitch.voiced)
    formants[voiced_frames] = formant_tracks(x, sampling_rate_hz, hop, voiced_frames)
    return CueTracks(
        pitch=pitch,
        spectral=spectral_tracks(x, sampling_rate_hz, hop, slope_convention),
        rate=rate_tracks(x, sampling_rate_hz, hop, pitch.voiced),
        formants_hz=formants,
        periods=period_table(pulses_s, x, sampling_rate_hz),
        pulse_frame=pulse_frames(pulses_s, pitch.f0_hz.shape[0], hop, sampling_rate_hz),
        hop_samples=hop,
        sampling_rate_hz=sampling_rate_hz,
    )


def summarise_cues(tracks: CueTracks, frame_mask: BoolArray) -> CueSet:
    """Cues over the frames that ``frame_mask`` (shape ``(frames,)``) selects."""
    voiced = tracks.pitch.voiced & frame_mask
    enough_voiced = int(voiced.sum()) >= MIN_VOICED_FRAMES
    values: dict[str, float | None] = {}
    values.update(_loudness_cues(tracks.spectral.loudness[frame_mask]))
    values.update(_rate_cues(tracks.rate, frame_mask, tracks.hop_s))
    pulses = frame_mask[tracks.pulse_frame]
    values["jitter_local_pct"] = jitter_local_pct(tracks.periods, pulses)
    values["shimmer_local_db"] = shimmer_local_db(tracks.periods, pulses)
    if enough_voiced:
        values.update(_pitch_cues(tracks.pitch.f0_hz[voiced]))
        values["hnr_db"] = float(np.mean(hnr_db(tracks.pitch.strength[voiced])))
        values.update(_spectral_cues(tracks.spectral, voiced))
        values.update(_formant_cues(tracks.formants_hz[voiced]))
    return CueSet(values)


def _pitch_cues(f0_hz: FloatArray) -> dict[str, float | None]:
    """Mean and 20th-80th percentile range of F0 in semitones re 27.5 Hz (eGeMAPS)."""
    semitones = 12.0 * np.log2(f0_hz / SEMITONE_REFERENCE_HZ)
    low, high = np.percentile(semitones, F0_RANGE_PERCENTILES)
    return {"f0_mean_st": float(np.mean(semitones)), "f0_range_st": float(high - low)}


def _loudness_cues(loudness: FloatArray) -> dict[str, float | None]:
    """Mean loudness and its coefficient of variation (eGeMAPS amean and stddevNorm)."""
    if loudness.size < 2:
        return {}
    mean = float(np.mean(loudness))
    return {
        "loudness_mean": mean,
        "loudness_cv": float(np.std(loudness)) / mean if mean > 0 else None,
    }


def _rate_cues(rate: RateTracks, frame_mask: BoolArray, hop_s: float) -> dict[str, float | None]:
    """Nuclei per second of utterance time, and the share of that time in pauses."""
    spoken = frame_mask & rate.in_utterance
    duration_s = float(spoken.sum()) * hop_s
    if duration_s < MIN_RATE_DURATION_S:
        return {}
    return {
        "speech_rate_syl_s": float(rate.nucleus[spoken].sum()) / duration_s,
        "pause_ratio": float(rate.pause[spoken].mean()),
    }


def _spectral_cues(spectral: SpectralTracks, voiced: BoolArray) -> dict[str, float | None]:
    """Means over voiced frames (eGeMAPS's "V" variants: alphaRatioV, hammarbergIndexV, ...)."""
    return {
        "alpha_ratio_db": float(np.mean(spectral.alpha_ratio_db[voiced])),
        "hammarberg_index_db": float(np.mean(spectral.hammarberg_index_db[voiced])),
        "spectral_slope_0_500": float(np.mean(spectral.slope_0_500_db_hz[voiced])),
        "spectral_slope_500_1500": float(np.mean(spectral.slope_500_1500_db_hz[voiced])),
    }


def _formant_cues(formants_hz: FloatArray) -> dict[str, float | None]:
    """Mean F1-F3 over voiced frames where each was tracked."""
    values: dict[str, float | None] = {}
    for index, name in enumerate(("f1_hz", "f2_hz", "f3_hz")):
        tracked = formants_hz[:, index][np.isfinite(formants_hz[:, index])]
        values[name] = float(np.mean(tracked)) if tracked.size >= MIN_VOICED_FRAMES else None
    return values


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _validated_signal(signal: npt.NDArray[np.floating], sampling_rate_hz: int) -> FloatArray:
    """``signal`` as float64 after checking its shape, values and rate."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise InvalidParameter(f"signal must be mono with shape (samples,); got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidSamples("signal contains NaN or infinite samples; remove or replace them")
    if sampling_rate_hz < MIN_SAMPLING_RATE_HZ:
        raise SamplingRateTooLow(
            f"cue measurement needs at least {MIN_SAMPLING_RATE_HZ} Hz; got {sampling_rate_hz} Hz"
        )
    return x


def _frame_mask(tracks: CueTracks, mask: npt.NDArray[np.bool_] | None, n_samples: int) -> BoolArray:
    """Frame-level selection from a sample-level ``mask`` (all frames when None)."""
    if mask is None:
        return np.ones(tracks.frame_count, dtype=np.bool_)
    sample_mask = np.asarray(mask, dtype=np.bool_)
    if sample_mask.shape != (n_samples,):
        raise InvalidParameter(
            f"mask must have the signal's shape ({n_samples},); got {sample_mask.shape}"
        )
    return frame_mask_from_samples(sample_mask, tracks.frame_count, tracks.hop_samples)
