"""Clips in memory with their targets, length-bucketed batches and padding.

All clips of RAVDESS + EmoDB fit in memory (1,608 clips, about 90 minutes of 16 kHz audio,
about 350 MB as float32), so they are decoded once with soundfile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from service.inference.batching import pad_batch as pad_numpy
from service.labels import CANONICAL_LABELS
from toolkit.data.affect_norms import Affect, affect_target
from toolkit.data.soft_labels import to_vector
from toolkit.data.speech_crop import crop_to_speech
from toolkit.data.types import Utterance
from toolkit.metrics.affect import octant_indices

SAMPLING_RATE_HZ = 16_000
"""Every clip in shared/data is 16 kHz (its README)."""
NEUTRAL_RADIUS = 1e-6
"""Centred affect shorter than this is the neutral point itself: it has no octant."""


@dataclass(frozen=True)
class ClipSet:
    """Decoded clips and per-clip targets (``N`` clips, ``C`` = 9 canonical labels).

    Attributes:
        utterances: the source records, length ``N``.
        waveforms: float32 ``(samples,)`` each, at 16 kHz.
        acted: ``(N, C)`` one-hot of the acted label.
        soft: ``(N, C)`` rater soft label (one-hot without raters).
        affect: ``(N, 3)`` valence, arousal, dominance targets in [0, 1].
        teacher: ``(N, C)`` softened teacher probabilities (distillation), or ``None``.
    """

    utterances: list[Utterance]
    waveforms: list[np.ndarray]
    acted: np.ndarray
    soft: np.ndarray
    affect: np.ndarray
    teacher: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def labels(self) -> np.ndarray:
        """int64 ``(N,)`` acted label indices into ``CANONICAL_LABELS``."""
        labels: np.ndarray = self.acted.argmax(axis=1)
        return labels

    def subset(self, indices: Sequence[int]) -> ClipSet:
        """The clips at ``indices``."""
        chosen = list(indices)
        return ClipSet(
            [self.utterances[i] for i in chosen],
            [self.waveforms[i] for i in chosen],
            self.acted[chosen],
            self.soft[chosen],
            self.affect[chosen],
            None if self.teacher is None else self.teacher[chosen],
        )


def read_waveform(utterance: Utterance, max_samples: int, speech_crop: bool = False) -> np.ndarray:
    """Mono float32 samples of ``utterance`` (cropped to its speech when ``speech_crop``:
    ``toolkit.data.speech_crop``) cut to ``max_samples``.

    Raises ``ValueError`` when the file is not 16 kHz (resample it first).
    """
    samples, rate_hz = sf.read(utterance.path, dtype="float32", always_2d=True)
    if rate_hz != SAMPLING_RATE_HZ:
        raise ValueError(f"{utterance.path}: {rate_hz} Hz, expected {SAMPLING_RATE_HZ} Hz")
    mono = samples.mean(axis=1)
    if speech_crop:
        mono = crop_to_speech(mono, SAMPLING_RATE_HZ)
    return np.ascontiguousarray(mono[:max_samples])


def load_clips(
    utterances: Sequence[Utterance], max_samples: int, neutral: Affect, speech_crop: bool = False
) -> ClipSet:
    """Decode every clip and build its targets (affect from ratings or the norms table)."""
    items = list(utterances)
    acted = np.stack([to_vector({u.label: 1.0}) for u in items])
    soft = np.stack([to_vector(u.soft_label or {u.label: 1.0}) for u in items])
    affect = np.array([affect_target(u, neutral) for u in items], dtype=np.float32)
    waveforms = [read_waveform(u, max_samples, speech_crop) for u in items]
    return ClipSet(items, waveforms, acted, soft, affect)


def octant_targets(affect: np.ndarray, neutral: Affect) -> np.ndarray:
    """Octant index per row of ``affect`` ``(N, 3)``; -1 at the neutral point (no octant)."""
    octants = octant_indices(affect, neutral)
    radius = np.linalg.norm(affect - np.asarray(neutral), axis=1)
    return np.where(radius < NEUTRAL_RADIUS, -1, octants)


def label_class_weights(labels: np.ndarray) -> np.ndarray:
    """Balanced weights ``(9,)``: ``N / (K * count_c)`` for the K labels present, 1 for absent
    ones (the "balanced" heuristic of King & Zeng 2001, as in scikit-learn), so that every
    present label carries the same total weight: training then aims at UA, not WA."""
    counts = np.bincount(labels, minlength=len(CANONICAL_LABELS)).astype(np.float64)
    present = counts > 0
    weights = np.ones(len(CANONICAL_LABELS))
    weights[present] = counts.sum() / (present.sum() * counts[present])
    balanced: np.ndarray = weights.astype(np.float32)
    return balanced


def octant_class_weights(octants: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights ``(8,)`` with mean 1 over the octants present in ``octants``.

    Absent octants get weight 1: EAM mixes can land in them, and a batch whose only octant
    targets had weight 0 would divide 0 by 0 in the weighted cross-entropy.
    """
    counts = np.bincount(octants[octants >= 0], minlength=8).astype(np.float64)
    present = counts > 0
    weights = np.ones(8)
    inverse = 1.0 / counts[present]
    weights[present] = inverse / inverse.mean()
    normalised: np.ndarray = weights.astype(np.float32)
    return normalised


def shuffled_batches(n_clips: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random permutation of ``range(n_clips)`` cut into batches.

    Batches are not bucketed by length: EmoDB clips all last 2.0 s and RAVDESS clips 2.9-5.3 s,
    so length buckets are corpus buckets, and batch norm then normalises each corpus with its
    own batch statistics in training but with shared running statistics in evaluation (a
    first run bucketed by length learned slowly and validated erratically).
    """
    order = rng.permutation(n_clips)
    return [order[i : i + batch_size] for i in range(0, n_clips, batch_size)]


def pad_batch(waveforms: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Zero-pad to the longest clip: float32 ``(B, S)`` and int64 lengths ``(B,)`` tensors."""
    batch, lengths = pad_numpy(waveforms)
    return torch.from_numpy(batch), torch.from_numpy(lengths)


def corpus_label_mask(corpus_labels: Sequence[str]) -> np.ndarray:
    """Bool ``(C,)``: which canonical labels a corpus uses (restricts the argmax)."""
    return np.array([label in corpus_labels for label in CANONICAL_LABELS])
