"""Concordance correlation and EmoSphere octants."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.data import derive_vad, neutral_point
from toolkit.metrics.affect import (
    concordance_correlation,
    octant_accuracy,
    octant_indices,
    octant_of,
)

X = np.array([1.0, 2.0, 3.0])


def test_ccc_hand_values() -> None:
    assert concordance_correlation(X, X).tolist() == [1.0]
    # shift by 1: cov 2/3, var 2/3 + 2/3, mean gap 1 -> 2 (2/3) / (4/3 + 1) = 4/7
    assert concordance_correlation(X + 1, X)[0] == pytest.approx(4 / 7)
    assert concordance_correlation(X[::-1], X)[0] == pytest.approx(-1.0)


def test_ccc_per_column_and_constants() -> None:
    pred = np.column_stack([X, X + 1, np.ones(3)])
    true = np.column_stack([X, X, np.ones(3)])
    assert concordance_correlation(pred, true) == pytest.approx([1.0, 4 / 7, 1.0])


NEUTRAL = (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("arousal", "valence", "dominance", "octant"),
    [
        (+1, +1, +1, "I"),
        (-1, +1, +1, "II"),
        (-1, -1, +1, "III"),
        (+1, -1, +1, "IV"),
        (+1, +1, -1, "V"),
        (-1, +1, -1, "VI"),
        (-1, -1, -1, "VII"),
        (+1, -1, -1, "VIII"),
    ],
)
def test_octant_sign_table(arousal: int, valence: int, dominance: int, octant: str) -> None:
    vad = (0.5 + 0.1 * valence, 0.5 + 0.1 * arousal, 0.5 + 0.1 * dominance)  # (v, a, d) order
    assert octant_of(vad, NEUTRAL) == octant


def test_octants_of_derived_targets() -> None:
    centre = neutral_point()
    assert octant_of(derive_vad("angry", 1.0), centre) == "IV"  # a+, v-, d+
    assert octant_of(derive_vad("happy", 1.0), centre) == "I"
    assert octant_of(derive_vad("calm", 1.0), centre) == "VI"  # a-, v+, d-


def test_octant_accuracy() -> None:
    true = np.array([[0.6, 0.6, 0.6], [0.4, 0.4, 0.4], [0.6, 0.4, 0.6], [0.6, 0.6, 0.4]])
    pred = np.array([[0.9, 0.7, 0.8], [0.4, 0.6, 0.4], [0.6, 0.4, 0.6], [0.1, 0.1, 0.1]])
    assert octant_indices(true, NEUTRAL).tolist() == [0, 6, 1, 4]
    assert octant_accuracy(pred, true, NEUTRAL) == pytest.approx(2 / 4)
