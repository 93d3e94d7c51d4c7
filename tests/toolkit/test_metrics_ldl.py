"""Label-distribution metrics (Geng 2016) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.metrics.ldl import (
    canberra,
    chebyshev,
    clark,
    cosine,
    intersection,
    kl_divergence,
    ldl_scores,
    prior_baseline,
    prior_baseline_scores,
)

TRUE = np.array([[0.5, 0.5, 0.0]])
PRED = np.array([[0.25, 0.5, 0.25]])
HAND = {
    "chebyshev": 0.25,
    "clark": math.sqrt((0.25 / 0.75) ** 2 + 0 + (0.25 / 0.25) ** 2),  # 0/0 term -> 0
    "canberra": 0.25 / 0.75 + 0 + 1.0,
    "kl": 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(1.0),  # 0 * ln 0 term -> 0
    "cosine": 0.375 / (math.sqrt(0.5) * math.sqrt(0.375)),
    "intersection": 0.75,
}


def test_single_sample_hand_values() -> None:
    assert ldl_scores(TRUE, PRED).as_dict() == pytest.approx(HAND)


def test_values_are_averaged_over_samples() -> None:
    true, pred = np.vstack([TRUE, TRUE]), np.vstack([PRED, TRUE])  # 2nd sample is exact
    assert chebyshev(true, pred) == pytest.approx(HAND["chebyshev"] / 2)
    assert clark(true, pred) == pytest.approx(HAND["clark"] / 2)
    assert canberra(true, pred) == pytest.approx(HAND["canberra"] / 2)
    assert kl_divergence(true, pred) == pytest.approx(HAND["kl"] / 2)
    assert cosine(true, pred) == pytest.approx((HAND["cosine"] + 1) / 2)
    assert intersection(true, pred) == pytest.approx((0.75 + 1) / 2)


def test_kl_is_finite_for_zero_predictions() -> None:
    value = kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert value == pytest.approx(-math.log(1e-12))


def test_prior_baseline() -> None:
    train = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert prior_baseline(train).tolist() == [0.75, 0.25]
    test = np.array([[0.5, 0.5]])
    scores = prior_baseline_scores(train, test)
    assert scores.chebyshev == pytest.approx(0.25)
    assert scores.intersection == pytest.approx(0.75)


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"shape \(n, C\)"):
        chebyshev(TRUE, PRED[:, :2])
