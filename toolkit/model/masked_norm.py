"""Batch normalisation whose training statistics ignore padded frames.

``nn.BatchNorm`` in training mode averages over every position of a zero-padded batch, so the
statistics depend on how much padding a batch has, and its running statistics then differ from
the statistics of real frames. Here the batch mean and variance are taken over valid frames
only (the mask), and the running statistics are updated with them. In evaluation mode it is
the usual per-channel affine map with running statistics (exported as Mul/Add).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

EPS = 1e-5
"""PyTorch's BatchNorm default."""
MOMENTUM = 0.1
"""PyTorch's BatchNorm default running-average momentum."""


class MaskedBatchNorm(nn.Module):
    """Per-channel batch norm over valid frames of ``(B, C, ..., T)`` with mask ``(B, T)``."""

    running_mean: Tensor
    running_var: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Normalise ``features`` ``(B, C, ..., T)``; ``mask`` bool ``(B, T)``. Shape kept."""
        shape = [1, -1] + [1] * (features.dim() - 2)
        if self.training:
            mean, var = self._masked_moments(features, mask)
            with torch.no_grad():
                self.running_mean.lerp_(mean, MOMENTUM)
                self.running_var.lerp_(var, MOMENTUM)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + EPS)
        shift = self.bias - mean * scale
        return features * scale.view(shape) + shift.view(shape)

    @staticmethod
    def _masked_moments(features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Per-channel mean and (biased) variance over valid positions."""
        view = [mask.shape[0]] + [1] * (features.dim() - 2) + [mask.shape[1]]
        weights = mask.view(view).to(features.dtype).expand_as(features)
        dims = [d for d in range(features.dim()) if d != 1]
        count = weights.sum(dim=dims).clamp(min=1.0)
        mean = (features * weights).sum(dim=dims) / count
        centred = (features - mean.view([1, -1] + [1] * (features.dim() - 2))) * weights
        return mean, centred.pow(2).sum(dim=dims) / count
