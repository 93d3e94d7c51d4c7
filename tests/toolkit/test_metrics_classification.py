"""Categorical and fairness metrics against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.metrics.classification import (
    confusion_matrix,
    demographic_parity_gap,
    macro_f1,
    per_group_recall,
    tpr_gap,
    unweighted_accuracy,
    weighted_accuracy,
)

Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_matrix() -> None:
    expected = [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == expected


def test_ua_wa_macro_f1() -> None:
    # recalls 2/3, 1/2, 1/1
    assert unweighted_accuracy(Y_TRUE, Y_PRED, 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert weighted_accuracy(Y_TRUE, Y_PRED, 3) == pytest.approx(4 / 6)
    # F1 = 2TP / (2TP + FP + FN): 4/5, 2/4, 2/3
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_classes_absent_everywhere_are_ignored() -> None:
    assert unweighted_accuracy(Y_TRUE, Y_PRED, 5) == pytest.approx(
        unweighted_accuracy(Y_TRUE, Y_PRED, 3)
    )
    assert macro_f1(Y_TRUE, Y_PRED, 5) == pytest.approx(macro_f1(Y_TRUE, Y_PRED, 3))


def test_out_of_range_labels() -> None:
    with pytest.raises(ValueError, match=r"y_pred must hold class indices in \[0, 2\)"):
        confusion_matrix(np.array([0, 1]), np.array([0, 2]), 2)


GROUP_TRUE = np.array([0, 0, 1, 1, 0, 0, 1, 1])
GROUP_PRED = np.array([0, 0, 1, 0, 1, 1, 1, 1])
GROUPS = np.array(["female"] * 4 + ["male"] * 4)


def test_per_group_recall() -> None:
    recalls = per_group_recall(GROUP_TRUE, GROUP_PRED, GROUPS, 2)
    assert recalls["female"].tolist() == [1.0, 0.5]
    assert recalls["male"].tolist() == [0.0, 1.0]


def test_tpr_gap() -> None:
    gap = tpr_gap(GROUP_TRUE, GROUP_PRED, GROUPS, 2)
    assert gap.per_class.tolist() == [1.0, 0.5]
    assert (gap.max_gap, gap.mean_gap) == (1.0, 0.75)
    three = tpr_gap(GROUP_TRUE, GROUP_PRED, GROUPS, 3)  # class 2 in no group: left out
    assert np.isnan(three.per_class[2]) and three.mean_gap == 0.75


def test_demographic_parity_gap() -> None:
    # P(pred=0): female 3/4, male 0; P(pred=1): female 1/4, male 1
    gap = demographic_parity_gap(GROUP_PRED, GROUPS, 2)
    assert gap.per_class.tolist() == [0.75, 0.75]
    assert (gap.max_gap, gap.mean_gap) == (0.75, 0.75)
    assert demographic_parity_gap(GROUP_PRED, GROUPS, 3).mean_gap == pytest.approx(0.5)


def test_gap_needs_two_groups() -> None:
    with pytest.raises(ValueError, match="need at least 2 groups"):
        tpr_gap(GROUP_TRUE, GROUP_PRED, np.array(["female"] * 8), 2)
