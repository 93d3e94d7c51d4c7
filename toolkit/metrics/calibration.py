"""Calibration: expected calibration error and temperature scaling (Guo et al. 2017,
"On Calibration of Modern Neural Networks", ICML)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

TEMPERATURE_BOUNDS = (0.05, 20.0)
"""Search interval of :func:`fit_temperature`; wide enough for over- and under-confidence."""


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE = sum over bins m of (|B_m| / n) * |acc(B_m) - conf(B_m)|.

    ``probs`` has shape ``(n, C)`` (rows sum to 1), ``y_true`` shape ``(n,)`` (class indices).
    Confidence is the top probability; bins are equal-width intervals ((m-1)/M, m/M] on
    [0, 1] (a confidence of exactly 0 falls in the first bin); empty bins contribute 0.
    15 bins as in Guo et al. 2017.
    """
    probabilities = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y_true)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges[1:], confidence, side="left"), 0, n_bins - 1)
    error = 0.0
    for index in range(n_bins):
        members = bins == index
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            error += members.mean() * gap
    return float(error)


def nll(logits: np.ndarray, y_true: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of ``softmax(logits / temperature)``.

    ``logits`` shape ``(n, C)``, ``y_true`` shape ``(n,)``.
    """
    log_probs = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_probs[np.arange(len(y_true)), np.asarray(y_true)].mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of ``softmax(logits / T)`` on held-out clips.

    Bounded scalar search over log T in :data:`TEMPERATURE_BOUNDS` (scipy). Fit it on the
    validation speakers, never on the test speakers.
    """
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: nll(logits, y_true, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))
