"""One explanation: saliency -> salient regions -> cues inside and elsewhere -> references.

``explain(analysis, model, gender)`` takes the pipeline's result for one upload (the same run
that answers ``/predict``) and the served model, and returns the :class:`Explanation` that the
``/explain`` route presents: salient regions, every cue inside them and in the rest of the
speech, each against its neutral-speech norm (z-score) and the direction the expert table
expects for the predicted label, a consistency score, the same evidence for the runner-up
label, and a plain-language summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import numpy as np
import soxr

from service.errors import AudioTooLong
from service.explain.cues import (
    CUE_UNITS,
    MIN_SAMPLING_RATE_HZ,
    CueSet,
    CueTracks,
    analyse_cues,
    interval_mask,
    summarise_cues,
)
from service.explain.directions import Expectation, expected
from service.explain.framing import BoolArray, frame_mask_from_samples
from service.explain.references import ChosenNorms, CueNorm, Gender, choose_norms
from service.explain.saliency import (
    Region,
    Saliency,
    explanation_grid,
    occlusion_saliency,
    salient_regions,
)
from service.explain.summary import plain_summary
from service.inference.session import OnnxModel
from service.pipeline import Analysis

EXPLAIN_MAX_DURATION_S: Final[float] = 60.0
"""Longest recording ``/explain`` takes: occlusion re-runs every segment a tile touches, so the
cost grows with the duration (design choice keeping one explanation under a few seconds on one
core; ``/predict`` and batch jobs take longer audio)."""
CUE_SAMPLING_RATE_HZ: Final[int] = 16_000
"""Cues of a model running below 11 kHz are measured on its signal resampled to 16 kHz (the
content stays band-limited; a note says so)."""
TELEPHONE_WARNING: Final[str] = "telephone_band"
MIN_MEASURED_CUES: Final[int] = 8
"""When the salient regions alone leave fewer cues measurable (a region on a fricative has no
voiced frames, one shorter than 0.25 s no rate), the next most salient time slices are added
until this many are: half of the 16 cues (design choice), so every answer has a cue profile."""


@dataclass(frozen=True)
class CueEvidence:
    """One cue: values inside the salient regions and elsewhere, reference, z, expectation."""

    name: str
    unit: str
    inside: float | None
    elsewhere: float | None
    reference: CueNorm | None
    z: float | None
    expectation: Expectation
    consistent: bool | None


@dataclass(frozen=True)
class LabelConsistency:
    """How the salient-region cues fit the expert table for one label.

    ``score`` is the share of compared cues that point the expected way (None when no cue
    could be compared); ``compared`` counts cues with a stated direction and a z-score.
    """

    label: str
    probability: float
    score: float | None
    compared: int
    consistent: int
    cues: tuple[tuple[str, Expectation, bool | None], ...]


@dataclass(frozen=True)
class Explanation:
    """Everything ``/explain`` reports beyond the prediction (see the module docstring)."""

    label: str
    regions: tuple[Region, ...]
    salient_spans_s: tuple[tuple[float, float], ...]
    cues: tuple[CueEvidence, ...]
    predicted: LabelConsistency
    runner_up: LabelConsistency | None
    norms: ChosenNorms
    saliency: Saliency
    tracks: CueTracks
    cue_sampling_rate_hz: int
    summary: str
    notes: tuple[str, ...]
    timing_ms: dict[str, float]


def explain(analysis: Analysis, model: OnnxModel, gender: Gender | None = None) -> Explanation:
    """Explain the top label of ``analysis`` (one pipeline run of ``model``).

    Raises:
        AudioTooLong: the recording is longer than ``EXPLAIN_MAX_DURATION_S`` (413).
    """
    duration_s = analysis.signal.shape[0] / analysis.sampling_rate_hz
    if duration_s > EXPLAIN_MAX_DURATION_S:
        raise AudioTooLong(
            f"POST /explain explains up to {EXPLAIN_MAX_DURATION_S:.0f} s of audio; this upload "
            f"is {duration_s:.1f} s: cut it into shorter pieces, or use POST /predict"
        )
    timing_ms: dict[str, float] = {}
    labels = model.manifest.heads.categorical.labels
    start_s = time.perf_counter()
    speech_spans = _speech_spans(analysis, duration_s)
    grid = explanation_grid(speech_spans[0][0], speech_spans[-1][1], analysis.sampling_rate_hz)
    saliency = occlusion_saliency(
        analysis.signal, analysis.segments, model, grid, labels.index(analysis.overall.label)
    )
    regions = tuple(salient_regions(saliency))
    timing_ms["saliency"] = _elapsed_ms(start_s)
    start_s = time.perf_counter()
    notes = list(_saliency_notes(regions))
    signal, rate_hz = _cue_signal(analysis, notes)
    tracks = analyse_cues(signal, rate_hz)
    spans = _measured_spans(tracks, saliency, regions, speech_spans, signal.shape[0], notes)
    inside, elsewhere = _inside_and_elsewhere(tracks, spans, speech_spans, signal.shape[0])
    norms = choose_norms(model.manifest.cue_norms, gender)
    notes.extend(norms.notes)
    notes.extend(_quality_notes(analysis))
    label = analysis.overall.label
    cues = tuple(_cue_evidence(name, inside, elsewhere, norms, label) for name in CUE_UNITS)
    predicted = label_consistency(label, analysis.overall.probabilities[label], cues, norms)
    runner_up = _runner_up(analysis, cues, norms)
    timing_ms["cues"] = _elapsed_ms(start_s)
    summary = plain_summary(label, predicted, runner_up, regions, cues, norms)
    return Explanation(
        label=label,
        regions=regions,
        salient_spans_s=tuple(spans),
        cues=cues,
        predicted=predicted,
        runner_up=runner_up,
        norms=norms,
        saliency=saliency,
        tracks=tracks,
        cue_sampling_rate_hz=rate_hz,
        summary=summary,
        notes=tuple(notes),
        timing_ms=timing_ms,
    )


def label_consistency(
    label: str, probability: float, cues: tuple[CueEvidence, ...], norms: ChosenNorms
) -> LabelConsistency:
    """Compare the salient-region z-scores of ``cues`` with the expert table for ``label``."""
    rows: list[tuple[str, Expectation, bool | None]] = []
    for cue in cues:
        expectation = expected(label, cue.name)
        z = norms.z_score(cue.name, cue.inside)
        rows.append((cue.name, expectation, _agrees(expectation, z)))
    verdicts = [verdict for _, _, verdict in rows if verdict is not None]
    agreeing = sum(verdicts)
    return LabelConsistency(
        label=label,
        probability=float(probability),
        score=agreeing / len(verdicts) if verdicts else None,
        compared=len(verdicts),
        consistent=agreeing,
        cues=tuple(rows),
    )


def _agrees(expectation: Expectation, z: float | None) -> bool | None:
    """True when ``z`` points the expected way; None without a direction or a z-score."""
    if z is None or not expectation.is_directional:
        return None
    return bool(z > 0) if expectation.direction == "higher" else bool(z < 0)


def _cue_evidence(
    name: str, inside: CueSet, elsewhere: CueSet, norms: ChosenNorms, label: str
) -> CueEvidence:
    value = inside[name].value
    expectation = expected(label, name)
    z = norms.z_score(name, value)
    return CueEvidence(
        name=name,
        unit=CUE_UNITS[name],
        inside=value,
        elsewhere=elsewhere[name].value,
        reference=norms.norms.get(name),
        z=z,
        expectation=expectation,
        consistent=_agrees(expectation, z),
    )


def _runner_up(
    analysis: Analysis, cues: tuple[CueEvidence, ...], norms: ChosenNorms
) -> LabelConsistency | None:
    ranked = sorted(analysis.overall.probabilities.items(), key=lambda item: -item[1])
    if len(ranked) < 2:
        return None
    label, probability = ranked[1]
    return label_consistency(label, probability, cues, norms)


def _speech_spans(analysis: Analysis, duration_s: float) -> list[tuple[float, float]]:
    """Detected speech regions, or the whole recording when none were found."""
    spans = [(r.start_s, min(r.end_s, duration_s)) for r in analysis.speech.regions]
    return [span for span in spans if span[1] > span[0]] or [(0.0, duration_s)]


def _merged_spans(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of time spans, sorted and disjoint."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _measured_spans(
    tracks: CueTracks,
    saliency: Saliency,
    regions: tuple[Region, ...],
    speech_spans: list[tuple[float, float]],
    n_samples: int,
    notes: list[str],
) -> list[tuple[float, float]]:
    """The regions' time spans, widened by the next most salient time slices until at least
    ``MIN_MEASURED_CUES`` cues are measurable (all of the speech when nothing is salient)."""
    spans = _merged_spans([(r.start_s, r.end_s) for r in regions])
    if not spans:
        return speech_spans
    if _measurable(tracks, spans, speech_spans, n_samples) >= MIN_MEASURED_CUES:
        return spans
    grid = saliency.grid
    weight = saliency.weight.reshape(grid.n_times, grid.n_bands).sum(axis=1)
    drop = saliency.drop.reshape(grid.n_times, grid.n_bands).max(axis=1)
    for t in np.lexsort((-drop, -weight)):
        spans = _merged_spans([*spans, (grid.time_edges_s[t], grid.time_edges_s[t + 1])])
        if _measurable(tracks, spans, speech_spans, n_samples) >= MIN_MEASURED_CUES:
            break
    total_s = sum(end - start for start, end in spans)
    notes.append(
        f"the salient regions alone left fewer than {MIN_MEASURED_CUES} cues measurable; cues "
        f"are measured over the most salient time slices ({total_s:.2f} s)"
    )
    return spans


def _measurable(
    tracks: CueTracks,
    spans: list[tuple[float, float]],
    speech_spans: list[tuple[float, float]],
    n_samples: int,
) -> int:
    inside, _ = _inside_and_elsewhere(tracks, spans, speech_spans, n_samples)
    return sum(cue.value is not None for cue in inside.values())


def _cue_signal(analysis: Analysis, notes: list[str]) -> tuple[np.ndarray, int]:
    rate_hz = analysis.sampling_rate_hz
    if rate_hz >= MIN_SAMPLING_RATE_HZ:
        return analysis.signal, rate_hz
    notes.append(
        f"the model runs at {rate_hz} Hz; cues were measured after resampling to "
        f"{CUE_SAMPLING_RATE_HZ} Hz, so nothing above {rate_hz // 2} Hz is in them"
    )
    return soxr.resample(analysis.signal, rate_hz, CUE_SAMPLING_RATE_HZ), CUE_SAMPLING_RATE_HZ


def _inside_and_elsewhere(
    tracks: CueTracks,
    salient: list[tuple[float, float]],
    speech: list[tuple[float, float]],
    n_samples: int,
) -> tuple[CueSet, CueSet]:
    """Cues over the salient spans, and over the speech outside them."""
    rate_hz = tracks.sampling_rate_hz
    inside = _frames(tracks, interval_mask(salient, n_samples, rate_hz))
    spoken = _frames(tracks, interval_mask(speech, n_samples, rate_hz))
    return summarise_cues(tracks, inside), summarise_cues(tracks, spoken & ~inside)


def _frames(tracks: CueTracks, sample_mask: BoolArray) -> BoolArray:
    return frame_mask_from_samples(sample_mask, tracks.frame_count, tracks.hop_samples)


def _saliency_notes(regions: tuple[Region, ...]) -> list[str]:
    if regions:
        return []
    return [
        "no tile lowered the predicted label's probability when occluded (the evidence is "
        "spread over the whole utterance); cues are measured over all of the speech"
    ]


def _quality_notes(analysis: Analysis) -> list[str]:
    if TELEPHONE_WARNING in analysis.quality.warnings:
        return [
            "telephone-band audio: spectral-balance cues (alpha ratio, Hammarberg index, "
            "slopes) and F3 lack the energy above 4 kHz that their norms include"
        ]
    return []


def _elapsed_ms(start_s: float) -> float:
    return (time.perf_counter() - start_s) * 1000.0
