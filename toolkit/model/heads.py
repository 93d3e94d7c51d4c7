"""Output heads on the utterance embedding: the outputs named in docs/model-contract.md."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from service.labels import AFFECT_DIMENSIONS, CANONICAL_LABELS, OCTANTS


class HeadOutputs(NamedTuple):
    """Per-utterance outputs, each ``(B, ...)``.

    Attributes:
        logits: ``(B, 9)`` categorical logits over ``CANONICAL_LABELS``.
        distribution_logits: ``(B, 9)`` label-distribution logits over ``CANONICAL_LABELS``.
        vad: ``(B, 3)`` valence, arousal, dominance in [0, 1] (sigmoid applied).
        octant_logits: ``(B, 8)`` EmoSphere octant logits, order I..VIII.
    """

    logits: Tensor
    distribution_logits: Tensor
    vad: Tensor
    octant_logits: Tensor


class SerHeads(nn.Module):
    """Four linear heads on a shared embedding ``(B, E)`` with dropout before them."""

    def __init__(self, embedding_dim: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.categorical = nn.Linear(embedding_dim, len(CANONICAL_LABELS))
        self.distribution = nn.Linear(embedding_dim, len(CANONICAL_LABELS))
        self.affect = nn.Linear(embedding_dim, len(AFFECT_DIMENSIONS))
        self.octant = nn.Linear(embedding_dim, len(OCTANTS))

    def forward(self, embedding: Tensor) -> HeadOutputs:
        """``embedding`` ``(B, E)`` -> :class:`HeadOutputs`."""
        hidden = self.dropout(embedding)
        return HeadOutputs(
            logits=self.categorical(hidden),
            distribution_logits=self.distribution(hidden),
            vad=torch.sigmoid(self.affect(hidden)),
            octant_logits=self.octant(hidden),
        )
