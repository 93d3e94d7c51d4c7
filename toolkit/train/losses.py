"""Training losses (all return a scalar tensor; batch size ``B``, ``C`` = 9 canonical labels).

- :func:`soft_kl`: KL(target || softmax(logits)), the main loss of Wang et al. (EAM soft labels).
- :func:`soft_focal`: focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection")
  written for soft targets: ``-sum_c y_c (1 - p_c)^gamma log p_c``.
- :class:`CenterLoss`: Wen et al. 2016 ("A Discriminative Feature Learning Approach for Deep
  Face Recognition"): squared distance of each embedding to its class centre.
- :func:`supervised_contrastive`: SupCon (Khosla et al. 2020, eq. 2, "L_out").
- :func:`clean_consistency`: KL from the model's prediction on a clip's clean version to its
  prediction on the augmented version (the consistency loss of UDA, Xie et al. 2020).
- :func:`ccc_loss` and :func:`octant_weight`: EmoSphere-SER (Cho et al.) affect loss
  ``1 - CCC`` per dimension and an octant cross-entropy whose weight falls from 1 to 0.01.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

EPS = 1e-8
"""Guards divisions and logs of probabilities."""


def weighted_mean(values: Tensor, target: Tensor, class_weights: Tensor | None) -> Tensor:
    """Mean of per-sample ``values`` ``(B,)``, each weighted by ``sum_c target_c * w_c``
    (class-balanced training) when ``class_weights`` ``(C,)`` is given."""
    if class_weights is None:
        return values.mean()
    sample_weights = target @ class_weights
    return (values * sample_weights).sum() / sample_weights.sum().clamp(min=EPS)


def soft_kl(logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """Mean KL(target || softmax(logits)) in nats; ``logits``, ``target`` ``(B, C)``."""
    log_probs = F.log_softmax(logits, dim=-1)
    per_sample = F.kl_div(log_probs, target, reduction="none").sum(dim=-1)
    return weighted_mean(per_sample, target, class_weights)


def soft_focal(
    logits: Tensor, target: Tensor, gamma: float, class_weights: Tensor | None = None
) -> Tensor:
    """Focal loss with soft targets, mean over the batch; ``gamma`` 2 in Lin et al. 2017."""
    log_probs = F.log_softmax(logits, dim=-1)
    modulation = (1.0 - log_probs.exp()).pow(gamma)
    per_sample = -(target * modulation * log_probs).sum(dim=-1)
    return weighted_mean(per_sample, target, class_weights)


class CenterLoss(nn.Module):
    """``0.5 * mean_b ||e_b - c_{y_b}||^2`` with learnable centres ``(C, E)`` (Wen et al. 2016).

    The centres are parameters updated by the optimiser (the common SGD variant of the
    paper's separate centre update rule).
    """

    def __init__(self, n_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.zeros(n_classes, embedding_dim))

    def forward(self, embedding: Tensor, labels: Tensor) -> Tensor:
        """``embedding`` ``(B, E)``, ``labels`` int64 ``(B,)``."""
        return 0.5 * (embedding - self.centres[labels]).pow(2).sum(dim=-1).mean()


def supervised_contrastive(features: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """SupCon loss (Khosla et al. 2020, eq. 2) on L2-normalised ``features`` ``(B, P)``.

    For each anchor with at least one positive (same label, other sample), the mean over its
    positives of ``-log softmax`` of the similarity among all other samples. Anchors without
    positives are skipped; returns 0 when no anchor has one.
    """
    normalised = F.normalize(features, dim=-1)
    similarity = normalised @ normalised.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=features.device)
    similarity = similarity.masked_fill(self_mask, -1e9)
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    has_positive = counts > 0
    if not bool(has_positive.any()):
        return features.sum() * 0.0
    mean_log_prob = (log_prob * positives).sum(dim=1)[has_positive] / counts[has_positive]
    return -mean_log_prob.mean()


def distillation(logits: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(teacher || softmax(logits / T))`` (Hinton et al. 2015); ``teacher`` holds
    the teacher's probabilities at the same temperature, ``(B, C)``."""
    return temperature**2 * soft_kl(logits / temperature, teacher)


def clean_consistency(logits: Tensor, clean: Tensor, has_clean: Tensor) -> Tensor:
    """Mean over the rows with ``has_clean`` of KL(clean || softmax(logits)), in nats.

    ``logits`` ``(B, C)`` on the augmented views; ``clean`` ``(B, C)`` the model's own
    probabilities on the same clips' clean views, computed without gradient (UDA, Xie et al.
    2020, "Unsupervised Data Augmentation for Consistency Training", eq. 1: a fixed copy of
    the current model predicts the unaugmented input); ``has_clean`` bool ``(B,)``, rows
    without a clean target (clean views themselves, mixes of two clips) are skipped.
    Returns 0 (with a gradient path) when no row has one.
    """
    if not bool(has_clean.any()):
        return logits.sum() * 0.0
    return soft_kl(logits[has_clean], clean[has_clean])


def concordance(pred: Tensor, target: Tensor) -> Tensor:
    """Lin's CCC per column of ``(B, D)`` inputs -> ``(D,)`` (population moments)."""
    pred_mean, target_mean = pred.mean(dim=0), target.mean(dim=0)
    covariance = ((pred - pred_mean) * (target - target_mean)).mean(dim=0)
    denominator = pred.var(dim=0, unbiased=False) + target.var(dim=0, unbiased=False)
    return 2.0 * covariance / (denominator + (pred_mean - target_mean).pow(2) + EPS)


def ccc_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over dimensions of ``1 - CCC`` (EmoSphere-SER); inputs ``(B, 3)``."""
    return (1.0 - concordance(pred, target)).mean()


def octant_cross_entropy(logits: Tensor, octants: Tensor, class_weights: Tensor) -> Tensor:
    """Class-weighted cross-entropy on octants; rows with octant ``-1`` (at the neutral
    point, no octant) are ignored. ``logits`` ``(B, 8)``, ``octants`` int64 ``(B,)``."""
    if not bool((octants >= 0).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, octants, weight=class_weights, ignore_index=-1)


def octant_weight(epoch: int, start: float, end: float, decay_epochs: int) -> float:
    """Auxiliary octant weight: geometric fall from ``start`` (epoch 0) to ``end`` at
    ``decay_epochs`` and constant after (EmoSphere-SER: 1 -> 0.01 over the first epochs)."""
    if decay_epochs <= 0 or epoch >= decay_epochs:
        return end
    if start <= 0.0 or end <= 0.0:  # no geometric path through 0: interpolate linearly
        return start + (end - start) * epoch / decay_epochs
    return start * math.exp(math.log(end / start) * epoch / decay_epochs)
