"""Probabilities from logits, and the short summary of a mixed-emotion distribution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

BLEND_COMPONENT_MIN_SHARE: Final = 0.15
"""A label is a component of a blend when it holds at least this share (our choice: with
nine labels a uniform share is 0.11, so 0.15 is clearly above chance)."""
BLEND_SECOND_TO_FIRST_MIN_RATIO: Final = 0.5
"""A distribution is a blend when its second component has at least half the first's share."""


@dataclass(frozen=True)
class MixedSummary:
    """Is the distribution a blend, and of what.

    Attributes:
        is_blend: at least two components and the second is at least half as strong as the first.
        components: labels holding at least ``BLEND_COMPONENT_MIN_SHARE``, strongest first.
        entropy: normalised Shannon entropy in [0, 1] (0 = one label, 1 = uniform).
    """

    is_blend: bool
    components: tuple[str, ...]
    entropy: float


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``; ``(batch, C)`` in, same shape out."""
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exponentials = np.exp(scaled)
    return np.asarray(exponentials / exponentials.sum(axis=-1, keepdims=True))


def normalised_entropy(probabilities: np.ndarray) -> float:
    """Shannon entropy of a ``(C,)`` distribution divided by ``log(C)``."""
    positive = probabilities[probabilities > 0.0]
    return float(-np.sum(positive * np.log(positive)) / np.log(probabilities.size))


def summarise_mixture(distribution: np.ndarray, labels: tuple[str, ...]) -> MixedSummary:
    """Describe a ``(C,)`` label distribution as a blend of its strongest labels."""
    order = np.argsort(-distribution, kind="stable")
    components = tuple(
        labels[index] for index in order if distribution[index] >= BLEND_COMPONENT_MIN_SHARE
    )
    first, second = float(distribution[order[0]]), float(distribution[order[1]])
    is_blend = len(components) >= 2 and second >= BLEND_SECOND_TO_FIRST_MIN_RATIO * first
    return MixedSummary(is_blend, components, normalised_entropy(distribution))
