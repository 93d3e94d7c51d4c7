"""Soft labels: canonical label -> probability mappings and their vector form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from service.labels import CANONICAL_LABELS


def one_hot(label: str) -> dict[str, float]:
    """Soft label of a corpus without rater votes: all mass on ``label``."""
    return {label: 1.0}


def normalise_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Scale non-negative weights (probabilities or vote counts) to sum to 1.

    Labels with weight 0 are dropped. Raises ``ValueError`` when a weight is negative or
    not finite, or when all weights are 0.
    """
    for label, weight in weights.items():
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {label!r} must be finite and >= 0, got {weight}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("at least one weight must be > 0")
    return {label: w / total for label, w in weights.items() if w > 0}


def recognition_soft_label(
    label: str, recognised_fraction: float, corpus_labels: Sequence[str]
) -> dict[str, float]:
    """Soft label from a listener recognition rate.

    ``recognised_fraction`` (in [0, 1]) goes to the acted ``label``; the remainder is spread
    uniformly over the corpus's other labels, because the perception test only reports the
    share of listeners who recognised the acted emotion, not which other labels they chose.
    """
    if not 0.0 <= recognised_fraction <= 1.0:
        raise ValueError(f"recognised fraction must be in [0, 1], got {recognised_fraction}")
    others = [other for other in corpus_labels if other != label]
    remainder = (1.0 - recognised_fraction) / len(others) if others else 0.0
    weights = {label: recognised_fraction, **{other: remainder for other in others}}
    return normalise_weights(weights)


def to_vector(
    soft_label: Mapping[str, float], labels: Sequence[str] = CANONICAL_LABELS
) -> np.ndarray:
    """Soft label as a float32 vector of shape ``(len(labels),)`` in the order of ``labels``.

    Raises ``ValueError`` when the soft label puts mass on a label outside ``labels``.
    """
    unknown = sorted(set(soft_label) - set(labels))
    if unknown:
        raise ValueError(f"soft label has labels outside the label set: {unknown}")
    return np.array([soft_label.get(label, 0.0) for label in labels], dtype=np.float32)
