"""ECE and temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from toolkit.metrics.calibration import expected_calibration_error, fit_temperature, nll


def test_ece_hand_computed() -> None:
    probs = np.array([[0.9, 0.1], [0.75, 0.25], [0.3, 0.7], [0.55, 0.45]])
    y_true = np.array([0, 1, 1, 0])
    # 5 bins: (0.8, 1] {0.9 right}, (0.6, 0.8] {0.75 wrong, 0.7 right}, (0.4, 0.6] {0.55 right}
    # 1/4 * |1 - 0.9| + 2/4 * |0.5 - 0.725| + 1/4 * |1 - 0.55| = 0.025 + 0.1125 + 0.1125
    assert expected_calibration_error(probs, y_true, n_bins=5) == pytest.approx(0.25)


def test_ece_zero_when_confident_and_right() -> None:
    probs = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(probs, np.array([0, 1, 2, 1])) == 0.0


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.standard_normal((20000, 4))
    true_temperature = 2.0
    probs = softmax(logits / true_temperature, axis=1)
    y_true = np.array([rng.choice(4, p=row) for row in probs])
    fitted = fit_temperature(logits, y_true)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    assert nll(logits, y_true, fitted) < nll(logits, y_true, 1.0)
