"""Probabilities, blends, uncertainty and the duration-weighted aggregate."""

from __future__ import annotations

import numpy as np
import pytest

from service.postprocess.distribution import normalised_entropy, softmax, summarise_mixture
from service.postprocess.estimate import HeadValues, aggregate
from service.postprocess.uncertainty import ensemble_uncertainty, entropy_uncertainty

LABELS = ("neutral", "happy", "sad", "angry")


def test_softmax_rows_sum_to_one_and_temperature_flattens() -> None:
    logits = np.array([[2.0, 1.0, 0.0, -1.0]])
    sharp, flat = softmax(logits), softmax(logits, temperature=4.0)
    assert sharp.sum() == pytest.approx(1.0)
    assert flat.max() < sharp.max()


def test_blend_needs_two_strong_components() -> None:
    blend = summarise_mixture(np.array([0.45, 0.35, 0.1, 0.1]), LABELS)
    assert blend.is_blend and blend.components == ("neutral", "happy")
    single = summarise_mixture(np.array([0.7, 0.16, 0.07, 0.07]), LABELS)
    assert not single.is_blend and single.components == ("neutral", "happy")


def test_entropy_bounds() -> None:
    assert normalised_entropy(np.array([1.0, 0, 0, 0])) == pytest.approx(0.0)
    assert normalised_entropy(np.full(4, 0.25)) == pytest.approx(1.0)
    assert entropy_uncertainty(np.full(4, 0.25), threshold=0.8).abstain


def test_ensemble_disagreement_is_uncertain_agreement_is_not() -> None:
    agree = np.tile([0.7, 0.1, 0.1, 0.1], (3, 1))
    disagree = np.eye(4)[:3] * 0.97 + 0.01
    assert ensemble_uncertainty(agree, 0.5).value == pytest.approx(0.0, abs=1e-9)
    assert ensemble_uncertainty(disagree, 0.5).value > 0.5


def test_aggregate_weights_by_duration() -> None:
    first = HeadValues(
        np.array([1.0, 0, 0, 0]), np.array([1.0, 0, 0, 0]), np.array([0, 0, 0.0]), None
    )
    second = HeadValues(
        np.array([0, 1.0, 0, 0]), np.array([0, 1.0, 0, 0]), np.array([1, 1, 1.0]), None
    )
    combined = aggregate([first, second], np.array([3.0, 1.0]))
    np.testing.assert_allclose(combined.probabilities, [0.75, 0.25, 0, 0])
    np.testing.assert_allclose(combined.affect, [0.25, 0.25, 0.25])
    assert combined.member_probabilities is None
