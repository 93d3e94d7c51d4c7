"""Label-distribution learning metrics, as defined by Geng (2016, "Label Distribution
Learning", IEEE TKDE 28(7), Table 2).

``true`` and ``pred`` have shape ``(n, C)``; each row is a distribution (non-negative, sums
to 1). Each metric is computed per sample and averaged over the n samples.
Distances (lower is better): Chebyshev, Clark, Canberra, KL. Similarities (higher is
better): cosine, intersection.

Zeros: in Clark and Canberra a label where true + pred = 0 contributes 0 (both distributions
agree there). In KL, 0 * ln(0 / q) = 0 (its limit), and ``pred`` is floored at :data:`EPS` so
that a zero prediction of a label with true mass gives a large finite value, not infinity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EPS = 1e-12
"""Floor of predicted probabilities inside the KL logarithm."""


def _pair(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"true and pred must both have shape (n, C), got {t.shape} and {p.shape}")
    if (t < 0).any() or (p < 0).any():
        raise ValueError("distributions must be non-negative")
    return t, p


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with 0 where the denominator is 0."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def chebyshev(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean over samples of max_j |t_j - p_j|."""
    t, p = _pair(true, pred)
    return float(np.abs(t - p).max(axis=1).mean())


def clark(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean over samples of sqrt(sum_j (t_j - p_j)^2 / (t_j + p_j)^2)."""
    t, p = _pair(true, pred)
    return float(np.sqrt(_ratio((t - p) ** 2, (t + p) ** 2).sum(axis=1)).mean())


def canberra(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean over samples of sum_j |t_j - p_j| / (t_j + p_j)."""
    t, p = _pair(true, pred)
    return float(_ratio(np.abs(t - p), t + p).sum(axis=1).mean())


def kl_divergence(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean over samples of KL(true || pred) = sum_j t_j ln(t_j / p_j), in nats."""
    t, p = _pair(true, pred)
    terms = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - np.log(np.maximum(p, EPS))), 0.0)
    return float(terms.sum(axis=1).mean())


def cosine(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean over samples of sum_j t_j p_j / (||t|| ||p||)."""
    t, p = _pair(true, pred)
    norms = np.linalg.norm(t, axis=1) * np.linalg.norm(p, axis=1)
    return float(_ratio((t * p).sum(axis=1), norms).mean())


def intersection(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean over samples of sum_j min(t_j, p_j)."""
    t, p = _pair(true, pred)
    return float(np.minimum(t, p).sum(axis=1).mean())


@dataclass(frozen=True)
class LdlScores:
    """The six LDL metrics of one prediction set."""

    chebyshev: float
    clark: float
    canberra: float
    kl: float
    cosine: float
    intersection: float

    def as_dict(self) -> dict[str, float]:
        """Metric name -> value."""
        return asdict(self)


def ldl_scores(true: np.ndarray, pred: np.ndarray) -> LdlScores:
    """All six metrics of ``pred`` against ``true`` (both ``(n, C)``)."""
    return LdlScores(
        chebyshev(true, pred),
        clark(true, pred),
        canberra(true, pred),
        kl_divergence(true, pred),
        cosine(true, pred),
        intersection(true, pred),
    )


def prior_baseline(train_distributions: np.ndarray) -> np.ndarray:
    """The mean training distribution, shape ``(C,)``: the baseline to report beside a model.

    Predicting it for every test clip is what EM2LDL's baselines barely beat (product brief).
    """
    train = np.asarray(train_distributions, dtype=np.float64)
    if train.ndim != 2 or train.shape[0] == 0:
        raise ValueError(
            f"train_distributions must have shape (n, C) with n > 0, got {train.shape}"
        )
    mean: np.ndarray = train.mean(axis=0)
    return mean / float(mean.sum())


def prior_baseline_scores(
    train_distributions: np.ndarray, test_distributions: np.ndarray
) -> LdlScores:
    """Scores of predicting :func:`prior_baseline` of the training set for every test clip."""
    test = np.asarray(test_distributions, dtype=np.float64)
    prior = prior_baseline(train_distributions)
    return ldl_scores(test, np.broadcast_to(prior, test.shape))
