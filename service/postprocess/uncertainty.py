"""How sure the model is, and whether the service abstains."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.postprocess.distribution import normalised_entropy


@dataclass(frozen=True)
class UncertaintyEstimate:
    """Uncertainty in [0, 1]; ``abstain`` when it exceeds the manifest's threshold.

    ``measure`` is ``entropy`` (normalised predictive entropy) or
    ``ensemble_mutual_information`` (mutual information between the prediction and the
    ensemble member, normalised by ``log(C)``: the members' disagreement).
    """

    measure: str
    value: float
    threshold: float
    abstain: bool


def entropy_uncertainty(probabilities: np.ndarray, threshold: float) -> UncertaintyEstimate:
    """Normalised entropy of a ``(C,)`` distribution."""
    value = normalised_entropy(probabilities)
    return UncertaintyEstimate("entropy", value, threshold, value > threshold)


def ensemble_uncertainty(member_probabilities: np.ndarray, threshold: float) -> UncertaintyEstimate:
    """Mutual information of an ensemble's ``(members, C)`` probabilities, normalised to [0, 1]."""
    mean = member_probabilities.mean(axis=0)
    member_entropy = np.mean([normalised_entropy(p) for p in member_probabilities])
    value = max(0.0, normalised_entropy(mean) - float(member_entropy))
    return UncertaintyEstimate("ensemble_mutual_information", value, threshold, value > threshold)
