"""A short plain-language summary of an explanation (English, a few sentences)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from service.explain.references import ChosenNorms
from service.explain.saliency import Region

if TYPE_CHECKING:  # explanation.py imports this module; only the types are needed here
    from service.explain.explanation import CueEvidence, LabelConsistency

CUE_WORDS: Final[dict[str, str]] = {
    "f0_mean_st": "pitch",
    "f0_range_st": "pitch range",
    "loudness_mean": "loudness",
    "loudness_cv": "loudness variation",
    "speech_rate_syl_s": "speech rate",
    "pause_ratio": "pausing",
    "jitter_local_pct": "pitch jitter",
    "shimmer_local_db": "loudness shimmer",
    "hnr_db": "harmonics-to-noise ratio",
    "alpha_ratio_db": "high-frequency energy (alpha ratio)",
    "hammarberg_index_db": "Hammarberg index",
    "spectral_slope_0_500": "spectral slope 0-500 Hz",
    "spectral_slope_500_1500": "spectral slope 500-1500 Hz",
    "f1_hz": "first formant",
    "f2_hz": "second formant",
    "f3_hz": "third formant",
}
MENTIONED_CUES: Final[int] = 3
"""The summary names the three cues that differ most from neutral speech (by |z|)."""


def plain_summary(
    label: str,
    predicted: LabelConsistency,
    runner_up: LabelConsistency | None,
    regions: Sequence[Region],
    cues: Sequence[CueEvidence],
    norms: ChosenNorms,
) -> str:
    """Three to four sentences: what, where, which cues, how consistent."""
    sentences = [f"The model hears {label} ({predicted.probability:.0%})."]
    sentences.append(_where(regions))
    sentences.append(_which_cues(cues, norms))
    sentences.append(_consistency(predicted))
    if runner_up is not None:
        sentences.append(_runner_up(runner_up))
    return " ".join(sentence for sentence in sentences if sentence)


def _where(regions: Sequence[Region]) -> str:
    if not regions:
        return "No single part of the recording carries the decision."
    top = regions[0]
    more = f", and {len(regions) - 1} more region(s)" if len(regions) > 1 else ""
    return (
        f"It relied most on {top.start_s:.2f}-{top.end_s:.2f} s between "
        f"{top.low_hz:.0f} and {top.high_hz:.0f} Hz ({top.weight:.0%} of the evidence){more}."
    )


def _which_cues(cues: Sequence[CueEvidence], norms: ChosenNorms) -> str:
    scored = [cue for cue in cues if cue.z is not None]
    if not scored:
        return "No cue could be compared with neutral speech."
    strongest = sorted(scored, key=lambda cue: -abs(cue.z or 0.0))[:MENTIONED_CUES]
    parts = [
        f"{CUE_WORDS[cue.name]} {'higher' if (cue.z or 0) > 0 else 'lower'} (z {cue.z:+.1f})"
        for cue in strongest
    ]
    return f"There, compared with neutral speech ({norms.group} norms): " + ", ".join(parts) + "."


def _consistency(predicted: LabelConsistency) -> str:
    if predicted.compared == 0:
        return (
            f"The expert table states no cue directions that could be checked for "
            f"{predicted.label}, so their consistency is not judged."
        )
    return (
        f"{predicted.consistent} of {predicted.compared} cues with a stated direction point the "
        f"way vocal-emotion research expects for {predicted.label}."
    )


def _runner_up(runner_up: LabelConsistency) -> str:
    if runner_up.compared == 0:
        return f"Runner-up {runner_up.label} ({runner_up.probability:.0%}): no stated directions."
    return (
        f"Runner-up {runner_up.label} ({runner_up.probability:.0%}): {runner_up.consistent} of "
        f"{runner_up.compared}."
    )
