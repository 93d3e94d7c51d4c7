"""Acoustic cues on synthetic signals with known answers, masks, errors and speed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidParameter, InvalidSamples, SamplingRateTooLow
from service.explain import (
    CUE_UNITS,
    CueTracks,
    analyse_cues,
    interval_mask,
    measure_cues,
    measure_cues_inside_and_outside,
    summarise_cues,
)
from tests.data_paths import ravdess_clip
from tests.service.explain.references import (
    opensmile_reference,
    praat_reference,
    reference_clips,
)

RATE_HZ = 16000
Signal = npt.NDArray[np.float32]


def harmonic_tone(f0_hz: float, duration_s: float, n_harmonics: int = 10) -> Signal:
    """A steady harmonic complex (1/k amplitudes), peak about 0.3 full scale."""
    t = np.arange(round(duration_s * RATE_HZ)) / RATE_HZ
    tone = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, n_harmonics + 1))
    return np.asarray(0.15 * tone, dtype=np.float32)


def semitones(f0_hz: float) -> float:
    return float(12.0 * np.log2(f0_hz / 27.5))


def pulse_train(periods_s: npt.NDArray[np.float64], amplitudes: npt.NDArray[np.float64]) -> Signal:
    """Glottal-like pulses (one damped 700 Hz resonance each) at the given periods."""
    onsets = np.concatenate(([0.02], 0.02 + np.cumsum(periods_s)))
    n = int((onsets[-1] + 0.05) * RATE_HZ)
    t = np.arange(round(0.01 * RATE_HZ)) / RATE_HZ
    ring = np.exp(-t * 400.0) * np.sin(2 * np.pi * 700.0 * t)
    out = np.zeros(n)
    for onset, amplitude in zip(onsets, np.append(amplitudes, amplitudes[-1]), strict=True):
        start = round(onset * RATE_HZ)
        out[start : start + ring.size] += amplitude * ring[: n - start]
    return np.asarray(0.3 * out / np.abs(out).max(), dtype=np.float32)


def test_every_cue_is_reported_with_its_unit() -> None:
    cues = measure_cues(harmonic_tone(200.0, 1.0), RATE_HZ)
    assert list(cues) == list(CUE_UNITS)
    assert all(
        cues[name].unit == unit and cues[name].name == name for name, unit in CUE_UNITS.items()
    )


def test_harmonic_tone_at_200_hz_has_its_semitone_level() -> None:
    cues = measure_cues(harmonic_tone(200.0, 1.0), RATE_HZ)
    assert cues["f0_mean_st"].value == pytest.approx(semitones(200.0), abs=0.2)
    assert cues["f0_range_st"].value == pytest.approx(0.0, abs=0.2)
    assert cues["hnr_db"].value is not None and cues["hnr_db"].value > 20.0
    assert cues["jitter_local_pct"].value == pytest.approx(0.0, abs=0.05)
    assert cues["shimmer_local_db"].value == pytest.approx(0.0, abs=0.05)


def test_high_frequency_energy_raises_alpha_ratio_and_lowers_hammarberg() -> None:
    base = harmonic_tone(200.0, 1.0, n_harmonics=3)
    t = np.arange(base.size) / RATE_HZ
    with_1k = base + np.float32(0.3) * np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    with_3k = base + np.float32(0.3) * np.sin(2 * np.pi * 3000.0 * t).astype(np.float32)
    low, high = measure_cues(with_1k, RATE_HZ), measure_cues(with_3k, RATE_HZ)
    assert low["alpha_ratio_db"].value is not None and high["alpha_ratio_db"].value is not None
    assert high["alpha_ratio_db"].value > low["alpha_ratio_db"].value + 3.0
    assert low["hammarberg_index_db"].value is not None
    assert high["hammarberg_index_db"].value is not None
    assert high["hammarberg_index_db"].value < low["hammarberg_index_db"].value


def test_masks_select_each_half_of_a_two_pitch_signal() -> None:
    signal = np.concatenate([harmonic_tone(150.0, 1.0), harmonic_tone(300.0, 1.0)])
    first_half = interval_mask([(0.0, 1.0)], signal.size, RATE_HZ)
    low = measure_cues(signal, RATE_HZ, first_half)["f0_mean_st"].value
    high = measure_cues(signal, RATE_HZ, ~first_half)["f0_mean_st"].value
    assert low == pytest.approx(semitones(150.0), abs=0.3)
    assert high == pytest.approx(semitones(300.0), abs=0.3)
    both = measure_cues_inside_and_outside(signal, RATE_HZ, first_half)
    assert both.inside["f0_mean_st"].value == low
    assert both.elsewhere["f0_mean_st"].value == high


@pytest.mark.parametrize("jitter_fraction", [0.01, 0.03])
def test_jitter_of_a_jittered_pulse_train_is_recovered(jitter_fraction: float) -> None:
    rng = np.random.default_rng(7)
    periods_s = 0.008 * (1.0 + rng.uniform(-jitter_fraction, jitter_fraction, 150))
    expected_pct = 100.0 * np.mean(np.abs(np.diff(periods_s))) / np.mean(periods_s)
    cues = measure_cues(pulse_train(periods_s, np.ones(periods_s.size)), RATE_HZ)
    assert cues["jitter_local_pct"].value == pytest.approx(expected_pct, rel=0.25)


def test_shimmer_of_an_amplitude_modulated_pulse_train_is_recovered() -> None:
    rng = np.random.default_rng(3)
    amplitudes = 10.0 ** (rng.uniform(-0.5, 0.5, 150) / 20.0)  # +-0.5 dB per pulse
    expected_db = np.mean(np.abs(20.0 * np.log10(amplitudes[1:] / amplitudes[:-1])))
    cues = measure_cues(pulse_train(np.full(150, 0.008), amplitudes), RATE_HZ)
    assert cues["shimmer_local_db"].value == pytest.approx(expected_db, rel=0.3)


GAIN_INVARIANT = (
    "f0_mean_st",
    "f0_range_st",
    "loudness_cv",
    "speech_rate_syl_s",
    "pause_ratio",
    "jitter_local_pct",
    "shimmer_local_db",
    "hnr_db",
    "alpha_ratio_db",
    "hammarberg_index_db",
    "f1_hz",
    "f2_hz",
    "f3_hz",
)


def test_cues_other_than_loudness_do_not_depend_on_recording_gain() -> None:
    signal, rate_hz = sf.read(ravdess_clip(), dtype="float32")
    loud, quiet = measure_cues(signal, rate_hz), measure_cues(0.25 * signal, rate_hz)
    for name in GAIN_INVARIANT:
        assert quiet[name].value == pytest.approx(loud[name].value, rel=1e-3, abs=1e-6), name
    # eGeMAPS loudness is band power to the 0.33: a gain g scales it by g ** 0.66.
    assert quiet["loudness_mean"].value == pytest.approx(
        0.25**0.66 * loud["loudness_mean"].value, rel=1e-3
    )
    ls_loud = measure_cues(signal, rate_hz, slope_convention="least_squares")
    ls_quiet = measure_cues(0.25 * signal, rate_hz, slope_convention="least_squares")
    assert ls_quiet["spectral_slope_0_500"].value == pytest.approx(
        ls_loud["spectral_slope_0_500"].value, rel=1e-6
    )
    # openSMILE's slope convention moves with level (docs/cues.md): 12 dB quieter, flatter.
    assert quiet["spectral_slope_0_500"].value > loud["spectral_slope_0_500"].value


@pytest.fixture(scope="module")
def speech_tracks() -> CueTracks:
    signal, rate_hz = sf.read(ravdess_clip(), dtype="float32")
    return analyse_cues(signal, rate_hz)


@settings(max_examples=40, deadline=None)
@given(intervals=st.lists(st.tuples(st.floats(0.0, 4.2), st.floats(0.0, 0.8)), max_size=4))
def test_any_region_gives_finite_values_or_none(
    speech_tracks: CueTracks, intervals: list[tuple[float, float]]
) -> None:
    n_samples = speech_tracks.frame_count * speech_tracks.hop_samples
    regions = [(start, start + length) for start, length in intervals]
    sample_mask = interval_mask(regions, n_samples, speech_tracks.sampling_rate_hz)
    frame_mask = sample_mask[:: speech_tracks.hop_samples][: speech_tracks.frame_count]
    inside = summarise_cues(speech_tracks, frame_mask)
    elsewhere = summarise_cues(speech_tracks, ~frame_mask)
    for cues in (inside, elsewhere):
        assert list(cues) == list(CUE_UNITS)
        assert all(cue.value is None or np.isfinite(cue.value) for cue in cues.values())
    if not frame_mask.any():
        assert all(cue.value is None for cue in inside.values())


def test_silence_leaves_voice_cues_unmeasured() -> None:
    cues = measure_cues(np.zeros(RATE_HZ, dtype=np.float32), RATE_HZ)
    unmeasured = {name for name, cue in cues.items() if cue.value is None}
    assert {"f0_mean_st", "jitter_local_pct", "hnr_db", "f1_hz", "speech_rate_syl_s"} <= unmeasured


def test_an_empty_mask_measures_nothing() -> None:
    signal = harmonic_tone(200.0, 1.0)
    cues = measure_cues(signal, RATE_HZ, np.zeros(signal.size, dtype=bool))
    assert all(cue.value is None for cue in cues.values())


def test_nan_samples_are_rejected() -> None:
    signal = harmonic_tone(200.0, 0.5)
    signal[10] = np.nan
    with pytest.raises(InvalidSamples, match="NaN or infinite") as caught:
        measure_cues(signal, RATE_HZ)
    assert (caught.value.status, caught.value.code) == (422, "invalid_samples")


def test_low_sampling_rate_is_rejected() -> None:
    with pytest.raises(SamplingRateTooLow, match="at least 11000 Hz") as caught:
        measure_cues(np.zeros(8000, dtype=np.float32), 8000)
    assert (caught.value.status, caught.value.code) == (422, "sampling_rate_too_low")


def test_multichannel_signal_and_wrong_mask_shape_are_rejected() -> None:
    with pytest.raises(InvalidParameter, match="shape \\(samples,\\)") as caught:
        measure_cues(np.zeros((2, 1000), dtype=np.float32), RATE_HZ)
    assert (caught.value.status, caught.value.code) == (422, "invalid_parameter")
    with pytest.raises(InvalidParameter, match="mask must have the signal's shape"):
        measure_cues(np.zeros(1000, dtype=np.float32), RATE_HZ, np.ones(999, dtype=bool))


def test_four_seconds_of_speech_take_well_under_a_second() -> None:
    signal, rate_hz = sf.read(ravdess_clip(), dtype="float32")
    signal = signal[: 4 * rate_hz]
    measure_cues(signal, rate_hz)  # warm-up (filter-bank cache, imports)
    timings_ms = []
    for _ in range(3):
        start = time.perf_counter()
        measure_cues(signal, rate_hz)
        timings_ms.append(1000.0 * (time.perf_counter() - start))
    print(f"measure_cues on 4.0 s of speech: best of 3 = {min(timings_ms):.1f} ms")
    assert min(timings_ms) < 500.0  # 30-50 ms with one BLAS thread; generous for a busy machine


# --- agreement with the reference implementations on real speech -------------------------------

PRAAT_THRESHOLDS = {
    "f0_mean_st": 0.9,
    "f0_range_st": 0.9,
    "jitter_local_pct": 0.7,
    "shimmer_local_db": 0.7,
    "hnr_db": 0.7,
    "f1_hz": 0.7,
    "f2_hz": 0.7,
    "f3_hz": 0.7,
    "speech_rate_syl_s": 0.5,
}
"""Pearson r each cue must reach against Praat over the 40 clips: the issue's 0.9 (F0) and 0.7
(jitter, shimmer, HNR); formants and speech rate have no figure in the issue, 0.7 and 0.5 are
ours. Only one of the 40 single sentences has a pause, so the pause ratio is checked on joined
sentence pairs instead (``test_pauses_of_joined_sentences_agree_with_praat``)."""
JOINED_PAUSE_THRESHOLD = 0.8
OPENSMILE_THRESHOLDS = {
    "loudness_mean": 0.9,
    "loudness_cv": 0.9,
    "alpha_ratio_db": 0.9,
    "hammarberg_index_db": 0.9,
    "spectral_slope_0_500": 0.9,
    "spectral_slope_500_1500": 0.9,
}
"""The issue's 0.9 for loudness and spectral balance, against openSMILE eGeMAPSv02."""


@dataclass(frozen=True)
class Agreement:
    """Per-clip cue values from our code and from both references (NaN where unmeasured)."""

    ours: dict[str, npt.NDArray[np.float64]]
    praat: dict[str, npt.NDArray[np.float64]]
    opensmile: dict[str, npt.NDArray[np.float64]]
    least_squares_slopes: dict[str, npt.NDArray[np.float64]]
    ravdess_nuclei: list[int]
    joined_pause_ratio: tuple[list[float], list[float]]  # (ours, Praat) on 12 sentence pairs


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    pytest.importorskip("parselmouth")
    opensmile = pytest.importorskip("opensmile")
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    rows: dict[str, list[dict[str, float | None]]] = {"ours": [], "praat": [], "os": [], "ls": []}
    ravdess_nuclei = []
    for path in reference_clips():
        signal, rate_hz = sf.read(path, dtype="float64")
        tracks = analyse_cues(signal, rate_hz)
        everything = np.ones(tracks.frame_count, dtype=bool)
        rows["ours"].append(summarise_cues(tracks, everything).values_by_name())
        least_squares = measure_cues(signal, rate_hz, slope_convention="least_squares")
        rows["ls"].append(least_squares.values_by_name())
        rows["praat"].append(dict(praat_reference(signal, rate_hz)))
        rows["os"].append(dict(opensmile_reference(smile, signal, rate_hz)))
        if "ravdess" in path.parts:
            ravdess_nuclei.append(int(tracks.rate.nucleus.sum()))
    return Agreement(
        joined_pause_ratio=_joined_pause_ratios(),
        ours=_columns(rows["ours"]),
        praat=_columns(rows["praat"]),
        opensmile=_columns(rows["os"]),
        least_squares_slopes=_columns(rows["ls"]),
        ravdess_nuclei=ravdess_nuclei,
    )


def _joined_pause_ratios() -> tuple[list[float], list[float]]:
    """Pause ratio of 12 pairs of RAVDESS sentences played one after the other (ours, Praat)."""
    ravdess = [path for path in reference_clips() if "ravdess" in path.parts]
    ours, praat = [], []
    for first, second in zip(ravdess[0::2], ravdess[1::2], strict=True):
        joined = np.concatenate([sf.read(first)[0], sf.read(second)[0]])
        value = measure_cues(joined, RATE_HZ)["pause_ratio"].value
        ours.append(np.nan if value is None else value)
        praat.append(praat_reference(joined, RATE_HZ).get("pause_ratio", np.nan))
    return ours, praat


def _columns(rows: list[dict[str, float | None]]) -> dict[str, npt.NDArray[np.float64]]:
    return {
        name: np.array([np.nan if row.get(name) is None else row[name] for row in rows], float)
        for name in CUE_UNITS
    }


def pearson_r(ours: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]) -> float | None:
    """Pearson r over the clips both sides measured; None without a reference."""
    both = np.isfinite(ours) & np.isfinite(reference)
    if both.sum() < 3:
        return None
    return float(np.corrcoef(ours[both], reference[both])[0, 1])


def test_cues_agree_with_praat_and_opensmile(
    agreement: Agreement, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"{'cue':<24}{'r Praat':>9}{'r openSMILE':>13}{'needed':>8}  (n = 40 clips)"]
    failures = []
    for name in CUE_UNITS:
        ours = agreement.ours[name]
        r_praat = pearson_r(ours, agreement.praat[name])
        r_os = pearson_r(ours, agreement.opensmile[name])
        needed, r = PRAAT_THRESHOLDS.get(name), r_praat
        if name in OPENSMILE_THRESHOLDS:
            needed, r = OPENSMILE_THRESHOLDS[name], r_os
        lines.append(f"{name:<24}{_fmt(r_praat):>9}{_fmt(r_os):>13}{_fmt(needed):>8}")
        if needed is not None and (r is None or not r >= needed):
            failures.append(f"{name}: r = {r} < {needed}")
    for name in ("spectral_slope_0_500", "spectral_slope_500_1500"):
        r = pearson_r(agreement.least_squares_slopes[name], agreement.opensmile[name])
        lines.append(f"{name + ' (least squares)':<37}{_fmt(r):>9}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not failures, failures


def test_nuclei_count_the_syllables_of_ravdess_sentences(
    agreement: Agreement, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both RAVDESS sentences have 7 syllables ("Kids are talk-ing by the door", "Dogs are
    # sit-ting by the door").
    error = np.abs(np.array(agreement.ravdess_nuclei) - 7)
    with capsys.disabled():
        print(
            f"\nRAVDESS syllable nuclei: mean |count - 7| = {error.mean():.2f} "
            f"over {error.size} clips, counts {agreement.ravdess_nuclei}"
        )
    assert error.mean() <= 1.5


def test_pauses_of_joined_sentences_agree_with_praat(
    agreement: Agreement, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, praat = (np.array(values) for values in agreement.joined_pause_ratio)
    r = pearson_r(ours, praat)
    with capsys.disabled():
        print(f"\npause_ratio on 12 joined RAVDESS sentence pairs: r Praat = {_fmt(r)}")
    assert r is not None and r >= JOINED_PAUSE_THRESHOLD


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
