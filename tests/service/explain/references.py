"""Reference cue values from Praat (parselmouth) and openSMILE eGeMAPSv02: test-only (GPL and
research licences), never imported by the service.

Each function returns ``{cue name: reference value}`` for one clip, measured the way the cue
is defined (see ``docs/cues.md``): Praat's default analyses at a 10 ms step, averaged over the
frames Praat's pitch track calls voiced; openSMILE's eGeMAPSv02 functionals as they come.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.data_paths import shared_data_dir

FloatArray = npt.NDArray[np.float64]

OPENSMILE_NAMES = {
    "f0_mean_st": "F0semitoneFrom27.5Hz_sma3nz_amean",
    "f0_range_st": "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2",
    "loudness_mean": "loudness_sma3_amean",
    "loudness_cv": "loudness_sma3_stddevNorm",
    "speech_rate_syl_s": "loudnessPeaksPerSec",
    "jitter_local_pct": "jitterLocal_sma3nz_amean",
    "shimmer_local_db": "shimmerLocaldB_sma3nz_amean",
    "hnr_db": "HNRdBACF_sma3nz_amean",
    "alpha_ratio_db": "alphaRatioV_sma3nz_amean",
    "hammarberg_index_db": "hammarbergIndexV_sma3nz_amean",
    "spectral_slope_0_500": "slopeV0-500_sma3nz_amean",
    "spectral_slope_500_1500": "slopeV500-1500_sma3nz_amean",
    "f1_hz": "F1frequency_sma3nz_amean",
    "f2_hz": "F2frequency_sma3nz_amean",
    "f3_hz": "F3frequency_sma3nz_amean",
}
"""The eGeMAPSv02 functional that corresponds to each cue (openSMILE jitter is a fraction)."""


def reference_clips() -> list[Path]:
    """40 clips: 24 RAVDESS (all 20 actors, the 8 emotions in turn, both intensities and
    sentences) and 16 EmoDB (all 8 speakers, two emotions each, in turn)."""
    ravdess = _metadata("ravdess")
    emotions = sorted({row["emotion"] for row in ravdess})
    chosen: list[Path] = []
    for index in range(24):
        actor = f"{index % 20 + 1:02d}"
        emotion = emotions[index % len(emotions)]
        rows = [r for r in ravdess if r["speaker"] == actor and r["emotion"] == emotion]
        chosen.append(_clip("ravdess", rows[index % len(rows)]))
    emodb = _metadata("emodb")
    speakers = sorted({row["speaker"] for row in emodb})
    emotions = sorted({row["emotion"] for row in emodb})
    for index in range(16):
        speaker = speakers[index % len(speakers)]
        emotion = emotions[index % len(emotions)]
        rows = [r for r in emodb if r["speaker"] == speaker and r["emotion"] == emotion]
        rows = rows or [r for r in emodb if r["speaker"] == speaker]
        chosen.append(_clip("emodb", rows[0]))
    return chosen


def _metadata(corpus: str) -> list[dict[str, str]]:
    with (shared_data_dir() / corpus / "metadata.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _clip(corpus: str, row: dict[str, str]) -> Path:
    return shared_data_dir() / corpus / row["file"]


def opensmile_reference(smile: Any, signal: FloatArray, rate_hz: int) -> dict[str, float]:
    """eGeMAPSv02 functionals of the clip, under our cue names (jitter in %)."""
    row = smile.process_signal(signal, rate_hz).iloc[0]
    values = {cue: float(row[name]) for cue, name in OPENSMILE_NAMES.items()}
    values["jitter_local_pct"] *= 100.0
    return values


def praat_reference(signal: FloatArray, rate_hz: int) -> dict[str, float]:
    """Praat's measures of the clip: pitch, voice report, harmonicity, formants, rhythm."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(signal, rate_hz)
    pitch = sound.to_pitch_ac(time_step=0.01)  # Praat defaults: 75-600 Hz, thresholds, costs
    f0_hz = pitch.selected_array["frequency"]
    voiced_times = pitch.xs()[f0_hz > 0]
    semitones = 12.0 * np.log2(f0_hz[f0_hz > 0] / 27.5)
    pulses = call([sound, pitch], "To PointProcess (cc)")
    harmonicity = sound.to_harmonicity_cc()  # 10 ms, 75 Hz, silence 0.1, 1 period
    hnr_frames = harmonicity.values[0]  # -200 dB marks frames Praat found unvoiced or silent
    nearest = np.round((voiced_times - harmonicity.xs()[0]) / harmonicity.dx).astype(int)
    hnr = hnr_frames[np.clip(nearest, 0, hnr_frames.size - 1)]
    formant = sound.to_formant_burg()  # 5 formants up to 5500 Hz, 25 ms, from 50 Hz
    values = {
        "f0_mean_st": float(np.mean(semitones)),
        "f0_range_st": float(np.percentile(semitones, 80) - np.percentile(semitones, 20)),
        "jitter_local_pct": 100.0 * call(pulses, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3),
        "shimmer_local_db": call(
            [sound, pulses], "Get shimmer (local_dB)", 0, 0, 0.0001, 0.02, 1.3, 1.6
        ),
        "hnr_db": float(np.mean(hnr[hnr > -200.0])),
    }
    for number in (1, 2, 3):
        track = np.array([formant.get_value_at_time(number, t) for t in voiced_times])
        values[f"f{number}_hz"] = float(np.nanmean(track))
    values.update(_praat_rhythm(sound, pitch))
    return values


def _praat_rhythm(sound: Any, pitch: Any) -> dict[str, float]:
    """de Jong & Wempe (2009) on Praat's intensity and pitch: nuclei rate and pause ratio.

    Silence threshold 25 dB under the 0.99 quantile, pauses >= 0.3 s, sounding >= 0.1 s,
    nuclei = intensity peaks above the threshold with a 2 dB dip to the next peak, voiced.
    """
    from parselmouth.praat import call

    intensity = sound.to_intensity(minimum_pitch=50.0, time_step=0.01)
    level_db = intensity.values[0]
    threshold_db = max(float(np.quantile(level_db, 0.99)) - 25.0, float(level_db.min()))
    relative_db = threshold_db - float(level_db.max())
    grid = call(intensity, "To TextGrid (silences)", relative_db, 0.3, 0.1, "silent", "sounding")
    intervals = [
        (
            call(grid, "Get start time of interval", 1, i),
            call(grid, "Get end time of interval", 1, i),
            call(grid, "Get label of interval", 1, i),
        )
        for i in range(1, call(grid, "Get number of intervals", 1) + 1)
    ]
    sounding = [(start, end) for start, end, label in intervals if label == "sounding"]
    if not sounding:
        return {}
    span_start, span_end = sounding[0][0], sounding[-1][1]
    span_s = span_end - span_start
    paused_s = sum(
        end - start
        for start, end, label in intervals
        if label == "silent" and start >= span_start and end <= span_end
    )
    mid = level_db[1:-1]
    peaks = np.flatnonzero((mid > level_db[:-2]) & (mid >= level_db[2:]) & (mid > threshold_db)) + 1
    nuclei = 0
    if peaks.size:
        dips = np.minimum.reduceat(level_db, peaks)
        for peak in peaks[level_db[peaks] - dips > 2.0]:
            if np.isfinite(pitch.get_value_at_time(intensity.xs()[peak])):
                nuclei += 1
    return {"speech_rate_syl_s": nuclei / span_s, "pause_ratio": paused_s / span_s}
