"""Categorical metrics and per-group fairness gaps.

Labels are class indices: ``y_true`` and ``y_pred`` are integer arrays of shape ``(n,)`` with
values in ``[0, n_classes)``; ``groups`` is an array of shape ``(n,)`` of group names (e.g.
gender). Rows of a confusion matrix are true classes, columns predicted classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> None:
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(
            f"y_true and y_pred must be equal, non-empty (n,) arrays, got "
            f"{y_true.shape} and {y_pred.shape}"
        )
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.min() < 0 or values.max() >= n_classes:
            raise ValueError(f"{name} must hold class indices in [0, {n_classes})")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, shape ``(n_classes, n_classes)``: ``[t, p]`` = clips of class t predicted as p."""
    true, pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    _check(true, pred, n_classes)
    counts = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall (true-positive rate) per class, shape ``(n_classes,)``; NaN for absent classes."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def unweighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """UA (unweighted average recall): mean recall over the classes present in ``y_true``."""
    return float(np.nanmean(per_class_recall(y_true, y_pred, n_classes)))


def weighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """WA: overall accuracy, the share of clips whose prediction is right."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    return float(np.trace(matrix) / matrix.sum())


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean of F1 = 2 TP / (2 TP + FP + FN) over classes present in ``y_true`` or ``y_pred``.

    A class absent from both has an undefined F1 (0/0) and is left out.
    """
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    true_pos = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    present = denominator > 0
    return float(np.mean(2.0 * true_pos[present] / denominator[present]))


def per_group_recall(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_classes: int
) -> dict[str, np.ndarray]:
    """Group name -> per-class recall ``(n_classes,)`` (NaN where the group lacks the class)."""
    names = np.asarray(groups).astype(str)
    return {
        str(name): per_class_recall(
            np.asarray(y_true)[names == name], np.asarray(y_pred)[names == name], n_classes
        )
        for name in sorted(set(names.tolist()))
    }


@dataclass(frozen=True)
class GroupGap:
    """A between-group gap per class and its summaries.

    ``per_class`` has shape ``(n_classes,)`` (NaN where a group lacks the class); ``max_gap``
    and ``mean_gap`` are taken over the classes with a defined gap.
    """

    max_gap: float
    mean_gap: float
    per_class: np.ndarray


def _gap(rates_by_group: dict[str, np.ndarray]) -> GroupGap:
    """Per class, max minus min rate over groups (|a - b| for two groups)."""
    if len(rates_by_group) < 2:
        raise ValueError(f"need at least 2 groups, got {sorted(rates_by_group)}")
    rates = np.stack(list(rates_by_group.values()))
    defined = ~np.isnan(rates).any(axis=0)
    per_class = np.full(rates.shape[1], np.nan)
    per_class[defined] = rates[:, defined].max(axis=0) - rates[:, defined].min(axis=0)
    if not defined.any():
        raise ValueError("no class is present in every group")
    return GroupGap(float(np.nanmax(per_class)), float(np.nanmean(per_class)), per_class)


def tpr_gap(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_classes: int) -> GroupGap:
    """Equal-opportunity gap (Hardt, Price & Srebro 2016, "Equality of Opportunity in
    Supervised Learning", NeurIPS), one-vs-rest per class.

    For class c, TPR_c(g) = P(pred = c | true = c, group = g); the gap of c is
    max_g TPR_c(g) - min_g TPR_c(g), i.e. |TPR_c(a) - TPR_c(b)| for two groups. Classes that
    some group lacks are left out. Raises ``ValueError`` with fewer than 2 groups.
    """
    return _gap(per_group_recall(y_true, y_pred, groups, n_classes))


def demographic_parity_gap(y_pred: np.ndarray, groups: np.ndarray, n_classes: int) -> GroupGap:
    """Demographic-parity gap: per class c, max_g P(pred = c | g) - min_g P(pred = c | g)
    (|P(pred=c|a) - P(pred=c|b)| for two groups), with its max and mean over classes."""
    predictions, names = np.asarray(y_pred, dtype=np.int64), np.asarray(groups).astype(str)
    rates = {
        str(name): np.bincount(predictions[names == name], minlength=n_classes)
        / np.sum(names == name)
        for name in sorted(set(names.tolist()))
    }
    return _gap(rates)
