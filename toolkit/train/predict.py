"""Batched PyTorch inference over a clip set, and the corpus-restricted UA."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from service.labels import CANONICAL_LABELS
from toolkit.metrics.classification import unweighted_accuracy
from toolkit.model.ser_model import SerModel
from toolkit.train.dataset import ClipSet, pad_batch

OUTPUT_NAMES = ("logits", "distribution_logits", "vad", "octant_logits")


@torch.no_grad()
def predict(model: SerModel, clips: ClipSet, batch_size: int) -> dict[str, np.ndarray]:
    """Head outputs for every clip, in clip order: name -> ``(N, width)`` float32."""
    order = np.argsort([w.size for w in clips.waveforms], kind="stable")
    collected: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUT_NAMES}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        waveform, lengths = pad_batch([clips.waveforms[int(i)] for i in chunk])
        heads = model(waveform, lengths).heads
        for name, value in zip(OUTPUT_NAMES, heads, strict=True):
            collected[name].append(value.numpy())
    inverse = np.argsort(order, kind="stable")
    return {name: np.concatenate(parts)[inverse] for name, parts in collected.items()}


def restricted_argmax(logits: np.ndarray, allowed_labels: Sequence[str]) -> np.ndarray:
    """Argmax over ``CANONICAL_LABELS`` restricted to ``allowed_labels``: ``(N,)`` indices."""
    allowed = np.array([label in allowed_labels for label in CANONICAL_LABELS])
    indices: np.ndarray = np.where(allowed[None, :], logits, -np.inf).argmax(axis=1)
    return indices


def restricted_ua(
    logits: np.ndarray, clips: ClipSet, corpus_labels: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """UA per corpus present in ``clips``, argmax restricted to the corpus's labels."""
    corpora = np.array([u.corpus for u in clips.utterances])
    scores = {}
    for corpus in sorted(set(corpora.tolist())):
        members = corpora == corpus
        predicted = restricted_argmax(logits[members], corpus_labels[corpus])
        scores[corpus] = unweighted_accuracy(
            clips.labels[members], predicted, len(CANONICAL_LABELS)
        )
    return scores
