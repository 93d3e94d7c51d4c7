"""Turn raw head outputs into per-segment estimates, and combine segments into one.

Aggregation over segments: each segment's categorical probabilities, label distribution,
affect point and (for ensembles) member probabilities are averaged with the segment's
duration as weight; the label, blend summary, sphere and uncertainty are then derived from
the averages exactly as for a single segment. A duration-weighted mean keeps every second of
speech equally important and is what a listener summarising the recording would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from service.inference.manifest import Manifest
from service.inference.session import ModelOutputs
from service.postprocess.affect import SpherePoint, to_sphere
from service.postprocess.distribution import MixedSummary, softmax, summarise_mixture
from service.postprocess.uncertainty import (
    UncertaintyEstimate,
    ensemble_uncertainty,
    entropy_uncertainty,
)

AGGREGATION_RULE: Final = (
    "duration-weighted mean of the segments' probabilities, distributions and affect; "
    "label, blend, sphere and uncertainty derived from the means"
)


@dataclass(frozen=True)
class HeadValues:
    """Probabilities of one stretch of audio (a segment, or the whole file).

    Shapes: ``probabilities`` (C,); ``distribution`` (D,); ``affect`` (3,) or ``None``;
    ``member_probabilities`` (members, C) or ``None``.
    """

    probabilities: np.ndarray
    distribution: np.ndarray
    affect: np.ndarray | None
    member_probabilities: np.ndarray | None


@dataclass(frozen=True)
class Estimate:
    """Everything the response says about one stretch of audio."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    distribution: dict[str, float]
    mixed: MixedSummary
    affect: np.ndarray | None
    sphere: SpherePoint | None
    uncertainty: UncertaintyEstimate


def head_values(outputs: ModelOutputs, manifest: Manifest) -> list[HeadValues]:
    """Split a batched call into one :class:`HeadValues` per row."""
    heads = manifest.heads
    probabilities = softmax(outputs.categorical_logits, heads.categorical.temperature)
    distribution = probabilities
    if outputs.distribution_logits is not None and heads.distribution is not None:
        distribution = softmax(outputs.distribution_logits, heads.distribution.temperature)
    members = None
    if outputs.ensemble_logits is not None:
        members = softmax(outputs.ensemble_logits, heads.categorical.temperature)
    affect = None if outputs.affect is None else np.clip(outputs.affect.astype(np.float64), 0, 1)
    return [
        HeadValues(
            probabilities=probabilities[row],
            distribution=distribution[row],
            affect=None if affect is None else affect[row],
            member_probabilities=None if members is None else members[row],
        )
        for row in range(probabilities.shape[0])
    ]


def aggregate(values: list[HeadValues], durations_s: np.ndarray) -> HeadValues:
    """Duration-weighted mean of several segments' values (see the module docstring)."""
    weights = durations_s / durations_s.sum()
    return HeadValues(
        probabilities=_weighted_mean(weights, [value.probabilities for value in values]),
        distribution=_weighted_mean(weights, [value.distribution for value in values]),
        affect=_weighted_mean_optional(weights, [value.affect for value in values]),
        member_probabilities=_weighted_mean_optional(
            weights, [value.member_probabilities for value in values]
        ),
    )


def estimate(values: HeadValues, manifest: Manifest) -> Estimate:
    """Label, blend summary, sphere and uncertainty of one stretch of audio."""
    labels = manifest.heads.categorical.labels
    distribution_labels = labels
    if manifest.heads.distribution is not None:
        distribution_labels = manifest.heads.distribution.labels
    top = int(np.argmax(values.probabilities))
    neutral = manifest.neutral_point
    neutral_vad = np.array([neutral.valence, neutral.arousal, neutral.dominance])
    return Estimate(
        label=labels[top],
        confidence=float(values.probabilities[top]),
        probabilities=_by_label(labels, values.probabilities),
        distribution=_by_label(distribution_labels, values.distribution),
        mixed=summarise_mixture(values.distribution, distribution_labels),
        affect=values.affect,
        sphere=None if values.affect is None else to_sphere(values.affect, neutral_vad),
        uncertainty=_uncertainty(values, manifest),
    )


def _uncertainty(values: HeadValues, manifest: Manifest) -> UncertaintyEstimate:
    threshold = manifest.uncertainty.abstain_threshold
    wants_ensemble = manifest.uncertainty.measure == "ensemble_mutual_information"
    if wants_ensemble and values.member_probabilities is not None:
        return ensemble_uncertainty(values.member_probabilities, threshold)
    return entropy_uncertainty(values.probabilities, threshold)


def _by_label(labels: tuple[str, ...], probabilities: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probabilities, strict=True)}


def _weighted_mean(weights: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    return np.asarray(np.tensordot(weights, np.stack(arrays), axes=1))


def _weighted_mean_optional(
    weights: np.ndarray, arrays: list[np.ndarray | None]
) -> np.ndarray | None:
    present = [array for array in arrays if array is not None]
    return _weighted_mean(weights, present) if len(present) == len(arrays) else None
