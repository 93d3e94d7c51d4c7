"""Training on the cached output of a backbone's frozen part (the Whisper-tiny encoder).

The frozen part of the encoder (:meth:`WhisperTinyEncoder.frozen_prefix`: front end, stem and
the layers below the fine-tuned ones; all of it when the encoder is frozen) gives the same
frames for the same waveform every epoch, so its output is computed once: for every
validation clip (clean) and for ``views`` versions of every training clip (view 0 clean, the
others augmented by :class:`toolkit.train.augment.Augmenter`, EAM and noise included, with
their mixed targets). Each epoch draws one view per clip and trains the fine-tuned top layers
(``model.whisper_trainable_layers``; none when frozen), FLAM and the heads on it. With
``loss.consistency`` on, an augmented view drawn for a step also gets the model's own
prediction on the clip's clean view (view 0) as the target of the consistency term. The
checkpoint holds the whole model (backbone included), so export and evaluation are the same
as for the compact model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, cast

import numpy as np
import torch
from torch import Tensor

from toolkit.model.ser_model import SerModel, SerOutputs
from toolkit.train.augment import Augmenter, TrainingExample
from toolkit.train.config import TrainConfig
from toolkit.train.dataset import ClipSet, pad_batch

EXTRACTION_BATCH = 16


class CacheableBackbone(Protocol):
    """A backbone split into a cacheable frozen prefix and a trainable suffix."""

    @property
    def prefix_is_frozen(self) -> bool: ...

    def frozen_prefix(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]: ...

    def trainable_suffix(self, hidden: Tensor, valid: Tensor) -> Tensor: ...


def cacheable_backbone(model: SerModel) -> CacheableBackbone:
    """``model.backbone`` as a :class:`CacheableBackbone`.

    Raises:
        ValueError: the backbone has no frozen prefix, or a parameter of it is trainable
            (its cached output would go stale).
    """
    backbone = model.backbone
    if not hasattr(backbone, "frozen_prefix") or not backbone.prefix_is_frozen:
        raise ValueError(
            f"{type(backbone).__name__} has no frozen prefix to cache; train it on waveforms"
        )
    return cast(CacheableBackbone, backbone)


@torch.no_grad()
def backbone_frames(model: SerModel, waveforms: list[np.ndarray]) -> list[Tensor]:
    """Valid frames ``(T_i, D)`` of each waveform through the backbone's frozen prefix."""
    backbone = cacheable_backbone(model)
    model.eval()
    frames: list[Tensor] = []
    for start in range(0, len(waveforms), EXTRACTION_BATCH):
        waveform, lengths = pad_batch(waveforms[start : start + EXTRACTION_BATCH])
        batch, mask = backbone.frozen_prefix(waveform, lengths)
        frames += [row[valid] for row, valid in zip(batch, mask, strict=True)]
    return frames


def pad_frames(frames: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-padded ``(B, T, D)`` and bool mask ``(B, T)``."""
    longest = max(f.shape[0] for f in frames)
    batch = torch.zeros(len(frames), longest, frames[0].shape[1])
    mask = torch.zeros(len(frames), longest, dtype=torch.bool)
    for row, f in enumerate(frames):
        batch[row, : f.shape[0]] = f
        mask[row, : f.shape[0]] = True
    return batch, mask


def pooled_outputs(model: SerModel, frames: Tensor, mask: Tensor) -> SerOutputs:
    """The backbone's trainable suffix, FLAM and heads on cached prefix frames
    ``(B, T, D)`` with bool ``mask`` ``(B, T)`` (the frames came from ``backbone_frames``,
    which checked the backbone once)."""
    frames = cast(CacheableBackbone, model.backbone).trainable_suffix(frames, mask)
    embedding, attention = model.pooling(frames, mask)
    return SerOutputs(model.heads(embedding), embedding, attention)


class FrozenFeatureFeeder:
    """Feeds cached frozen-prefix frames of clean and augmented training views."""

    def __init__(
        self,
        config: TrainConfig,
        model: SerModel,
        train: ClipSet,
        validation: ClipSet,
        views: int,
    ) -> None:
        augmenter = Augmenter(config.augment, train, seed=config.optim.seed + 1)
        self.rng = np.random.default_rng(config.optim.seed + 3)
        clean = [
            TrainingExample(w, train.acted[i], train.soft[i], train.affect[i])
            for i, w in enumerate(train.waveforms)
        ]
        self.views: list[list[TrainingExample]] = [clean]
        for _ in range(views - 1):
            self.views.append([augmenter.example(i) for i in range(len(train))])
        self.frames = [backbone_frames(model, [e.waveform for e in view]) for view in self.views]
        self.validation_frames = backbone_frames(model, validation.waveforms)
        self.batch_size = config.optim.batch_size
        self.consistency = config.loss.consistency > 0

    def train_batch(
        self, model: SerModel, indices: np.ndarray
    ) -> tuple[SerOutputs, list[TrainingExample]]:
        """One random view per clip of ``indices`` (with clean-view targets when the
        consistency term is on)."""
        chosen = self.rng.integers(len(self.views), size=len(indices))
        frames = [self.frames[v][int(i)] for v, i in zip(chosen, indices, strict=True)]
        examples = [self.views[v][int(i)] for v, i in zip(chosen, indices, strict=True)]
        if self.consistency:
            examples = self.with_clean_targets(model, indices, chosen, examples)
        batch, mask = pad_frames(frames)
        return pooled_outputs(model, batch, mask), examples

    def with_clean_targets(
        self,
        model: SerModel,
        indices: np.ndarray,
        chosen: np.ndarray,
        examples: list[TrainingExample],
    ) -> list[TrainingExample]:
        """``examples`` (views ``chosen`` of clips ``indices``) with ``clean`` set where the
        view is augmented and keeps the clip's own acted label (not mixed with another
        label by EAM): softmax of the model's logits on the clip's clean view, in eval mode
        (no dropout) and without gradient; ``model``'s mode is restored."""
        rows = [
            row
            for row, (view, index) in enumerate(zip(chosen, indices, strict=True))
            if view != 0
            and np.allclose(examples[row].acted, self.views[0][int(index)].acted, atol=1e-6)
        ]
        if not rows:
            return examples
        batch, mask = pad_frames([self.frames[0][int(indices[row])] for row in rows])
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits = pooled_outputs(model, batch, mask).heads.logits
        model.train(was_training)
        probabilities = torch.softmax(logits, dim=-1).numpy()
        targeted = list(examples)
        for row, clean in zip(rows, probabilities, strict=True):
            targeted[row] = replace(examples[row], clean=clean)
        return targeted

    def validation_logits(self, model: SerModel) -> np.ndarray:
        """``(N, 9)`` logits of the clean validation clips from cached frames."""
        parts = []
        for start in range(0, len(self.validation_frames), self.batch_size):
            batch, mask = pad_frames(self.validation_frames[start : start + self.batch_size])
            parts.append(pooled_outputs(model, batch, mask).heads.logits.numpy())
        return np.concatenate(parts)
