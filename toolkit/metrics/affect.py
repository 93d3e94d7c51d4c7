"""Affect (valence, arousal, dominance) metrics: concordance and EmoSphere octants.

Affect arrays have shape ``(n, 3)`` with columns in ``service.labels.AFFECT_DIMENSIONS`` order
(valence, arousal, dominance), each in [0, 1].
"""

from __future__ import annotations

import numpy as np

from service.labels import OCTANTS
from service.postprocess.affect import octant_of as centred_octant


def concordance_correlation(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Lin's (1989) concordance correlation coefficient per column.

    CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2), with population (1/n)
    moments. Inputs of shape ``(n,)`` or ``(n, d)``; returns shape ``(d,)`` (``(1,)`` for
    1-D input). A column where both inputs are constant and equal gives 1; constant and
    unequal gives 0.
    """
    x, y = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if x.shape != y.shape or x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(
            f"pred and true must have equal shape (n,) or (n, d), got {x.shape}, {y.shape}"
        )
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    covariance = ((x - mean_x) * (y - mean_y)).mean(axis=0)
    denominator = x.var(axis=0) + y.var(axis=0) + (mean_x - mean_y) ** 2
    identical = denominator == 0
    ccc = 2.0 * covariance / np.where(identical, 1.0, denominator)
    return np.where(identical, 1.0, ccc)


def octant_of(
    vad: tuple[float, float, float] | np.ndarray, neutral: tuple[float, float, float]
) -> str:
    """Octant name (I..VIII) of one (valence, arousal, dominance) point around ``neutral``."""
    valence, arousal, dominance = (float(v) - float(c) for v, c in zip(vad, neutral, strict=True))
    return centred_octant(arousal, valence, dominance)


def octant_indices(vad: np.ndarray, neutral: tuple[float, float, float]) -> np.ndarray:
    """Octant index (0 = I .. 7 = VIII, the order of ``OCTANTS``) per row of ``vad`` ``(n, 3)``."""
    points = np.asarray(vad, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"vad must have shape (n, 3), got {points.shape}")
    return np.array([OCTANTS.index(octant_of(row, neutral)) for row in points], dtype=np.int64)


def octant_accuracy(
    pred_vad: np.ndarray, true_vad: np.ndarray, neutral: tuple[float, float, float]
) -> float:
    """Share of clips whose predicted affect falls in the same octant as the true affect."""
    predicted, expected = octant_indices(pred_vad, neutral), octant_indices(true_vad, neutral)
    if predicted.shape != expected.shape:
        raise ValueError("pred_vad and true_vad must have the same number of rows")
    return float(np.mean(predicted == expected))
