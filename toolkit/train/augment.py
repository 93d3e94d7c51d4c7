"""On-the-fly augmentation of training clips: speed, EAM, additive noise, gain.

Order per clip: random crop to ``crop_s`` -> speed perturbation (changes tempo and pitch, as
Kaldi's speed perturbation, Ko et al. 2015, factors 0.9 / 1.0 / 1.1) -> energy-adaptive
mixup with a random other training clip (``toolkit.augment.eam``; its soft-label weight
also mixes the acted label and the affect target) -> silence before and after the clip under a
quiet noise floor (off unless ``silence_probability`` > 0) -> white, pink or babble noise at a
random SNR (``toolkit.augment.noise``; babble from training clips of other speakers, of the
same corpus when ``babble_same_corpus`` is set, and it covers the added silence too, as noise
covers a whole recording) -> gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from toolkit.augment.eam import eam_mix
from toolkit.augment.noise import (
    NOISE_KINDS,
    add_noise,
    babble_noise,
    mean_power,
    pink_noise,
    white_noise,
)
from toolkit.train.dataset import SAMPLING_RATE_HZ, ClipSet

BABBLE_TALKERS = 4
"""Talkers summed into one babble noise (a common small-crowd setting; noise.babble_noise)."""
BABBLE_POOL = 64
"""Clips of other speakers drawn as babble candidates per noisy clip."""


@dataclass(frozen=True)
class AugmentConfig:
    """``[augment]`` table of a training config (probabilities per clip).

    Attributes:
        eam_probability: share of clips mixed with a donor (EAM, Wang et al.).
        eam_max_donor_fraction: longest donor segment, share of the host ("up to half").
        eam_snr_db: host-to-donor SNR range (Wang et al.: [-5, 5] dB).
        noise_probability: share of clips with added noise (white, pink, babble equally
            unless ``noise_kind_weights`` says otherwise).
        noise_snr_db: SNR range of the added noise; covers the 0-20 dB evaluation range.
        speed_probability: share of clips speed-perturbed (factor 0.9 or 1.1).
        gain_db: uniform gain range applied last (clipped to [-1, 1]).
        crop_s: clips longer than this are cropped at a random start first (RAVDESS clips
            carry about 1 s of leading and trailing silence around a 1.5-2.5 s sentence).
        silence_probability: share of clips given silence before and after (0 = off, and
            then no random draw is made, so recipes without it train exactly as before).
        silence_s: range of each side's added silence, seconds, drawn per side.
        silence_floor_snr_db: clip-to-floor SNR range of the white or pink noise that covers
            the padded clip, so the silence is a quiet room rather than digital zero.
        babble_same_corpus: babble only from other speakers of the clip's own corpus (the
            evaluation's babble, ``toolkit.evaluate``, is built that way: a crowd speaking the
            clip's language and recording set-up) instead of from every other training speaker.
            With a single training corpus both draw the same clips and the same random numbers.
        noise_kind_weights: shares of white, pink and babble among the noisy clips (three
            non-negative numbers summing to 1), or None for equal shares drawn as before the
            option existed (``rng.integers(3)``), so recipes without it train exactly as they did.
    """

    eam_probability: float = 0.5
    eam_max_donor_fraction: float = 0.5
    eam_snr_db: tuple[float, float] = (-5.0, 5.0)
    noise_probability: float = 0.3
    noise_snr_db: tuple[float, float] = (0.0, 30.0)
    speed_probability: float = 0.3
    gain_db: tuple[float, float] = (-6.0, 6.0)
    crop_s: float = 3.5
    silence_probability: float = 0.0
    silence_s: tuple[float, float] = (0.2, 1.2)
    silence_floor_snr_db: tuple[float, float] = (30.0, 60.0)
    babble_same_corpus: bool = False
    noise_kind_weights: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        weights = self.noise_kind_weights
        if weights is None:
            return
        if len(weights) != len(NOISE_KINDS) or min(weights) < 0 or abs(sum(weights) - 1) > 1e-9:
            raise ValueError(
                f"noise_kind_weights must be {len(NOISE_KINDS)} non-negative shares of "
                f"{', '.join(NOISE_KINDS)} summing to 1, got {list(weights)}"
            )


@dataclass(frozen=True)
class TrainingExample:
    """One augmented clip and its targets (``C`` = 9 labels).

    ``teacher``: a teacher model's probabilities ``(C,)`` (distillation); ``clean``: the
    training model's own probabilities ``(C,)`` on the clip's clean version, the target of the
    consistency term (set per step by the cached-view feeder, :mod:`toolkit.train.frozen`).
    """

    waveform: np.ndarray
    acted: np.ndarray
    soft: np.ndarray
    affect: np.ndarray
    teacher: np.ndarray | None = None
    clean: np.ndarray | None = None


def change_speed(waveform: np.ndarray, factor: float) -> np.ndarray:
    """Play ``waveform`` ``factor`` times faster (resampled by ``1 / factor``)."""
    numerator, denominator = {0.9: (9, 10), 1.1: (11, 10)}[round(factor, 1)]
    tensor = torch.from_numpy(np.ascontiguousarray(waveform))
    resampled = torchaudio.functional.resample(tensor, numerator, denominator)
    samples: np.ndarray = resampled.numpy().astype(np.float32)
    return samples


class Augmenter:
    """Draws augmented training examples from ``clips`` with its own seeded generator."""

    def __init__(self, config: AugmentConfig, clips: ClipSet, seed: int) -> None:
        self.config = config
        self.clips = clips
        self.rng = np.random.default_rng(seed)
        self.speakers = np.array([u.speaker_key for u in clips.utterances])
        self.corpora = np.array([u.corpus for u in clips.utterances])

    def example(self, index: int) -> TrainingExample:
        """Augmented clip ``index`` of the clip set."""
        clips, config = self.clips, self.config
        waveform = self._maybe_speed(self._crop(clips.waveforms[index]))
        acted, soft, affect = clips.acted[index], clips.soft[index], clips.affect[index]
        teacher = None if clips.teacher is None else clips.teacher[index]
        if self.rng.random() < config.eam_probability:
            donor = int(self.rng.integers(len(clips)))
            waveform, weight = self._eam(waveform, clips.waveforms[donor])
            acted = (1 - weight) * acted + weight * clips.acted[donor]
            soft = (1 - weight) * soft + weight * clips.soft[donor]
            affect = (1 - weight) * affect + weight * clips.affect[donor]
            if teacher is not None and clips.teacher is not None:
                teacher = (1 - weight) * teacher + weight * clips.teacher[donor]
        if self._draw_silence() and mean_power(waveform) > 0:
            waveform = self._pad_with_silence(waveform)
        if self.rng.random() < config.noise_probability and mean_power(waveform) > 0:
            waveform = self._noise(waveform, index)
        gain = 10.0 ** (self.rng.uniform(*config.gain_db) / 20.0)
        waveform = np.clip(waveform * gain, -1.0, 1.0).astype(np.float32)
        return TrainingExample(waveform, acted, soft, affect, teacher)

    def _crop(self, waveform: np.ndarray) -> np.ndarray:
        samples = int(self.config.crop_s * SAMPLING_RATE_HZ)
        if waveform.size <= samples:
            return waveform
        start = int(self.rng.integers(0, waveform.size - samples + 1))
        return waveform[start : start + samples]

    def _maybe_speed(self, waveform: np.ndarray) -> np.ndarray:
        if self.rng.random() >= self.config.speed_probability:
            return waveform
        return change_speed(waveform, float(self.rng.choice([0.9, 1.1])))

    def _draw_silence(self) -> bool:
        probability = self.config.silence_probability
        return probability > 0 and self.rng.random() < probability

    def _pad_with_silence(self, waveform: np.ndarray) -> np.ndarray:
        """``waveform`` with random silences before and after, under a white or pink floor.

        RAVDESS clips are about half silence, the EmoDB copy almost none
        (``toolkit crop-share``): a model trained on EmoDB alone never sees the silence a user's
        recording starts and ends with.
        """
        before_s, after_s = self.rng.uniform(*self.config.silence_s, size=2)
        signal = np.concatenate(
            [
                np.zeros(round(before_s * SAMPLING_RATE_HZ), dtype=np.float32),
                waveform,
                np.zeros(round(after_s * SAMPLING_RATE_HZ), dtype=np.float32),
            ]
        )
        make_floor = white_noise if self.rng.random() < 0.5 else pink_noise
        floor_snr_db = float(self.rng.uniform(*self.config.silence_floor_snr_db))
        return add_noise(signal, make_floor(signal.size, self.rng), floor_snr_db)

    def _eam(self, host: np.ndarray, donor: np.ndarray) -> tuple[np.ndarray, float]:
        """Mix and return (clip, donor weight) via EAM with indicator soft labels."""
        mixed, weights = eam_mix(
            host,
            donor,
            np.array([1.0, 0.0]),
            np.array([0.0, 1.0]),
            self.rng,
            max_donor_fraction=self.config.eam_max_donor_fraction,
            snr_range_db=self.config.eam_snr_db,
        )
        return mixed, float(weights[1])

    def babble_candidates(self, index: int) -> np.ndarray:
        """Indices of the clips babble for clip ``index`` may be made of (ascending)."""
        allowed = self.speakers != self.speakers[index]
        if self.config.babble_same_corpus:
            allowed &= self.corpora == self.corpora[index]
        return np.flatnonzero(allowed)

    def _noise_kind(self) -> int:
        """Index into ``NOISE_KINDS`` of the next noisy clip's noise."""
        weights = self.config.noise_kind_weights
        if weights is None:
            return int(self.rng.integers(len(NOISE_KINDS)))
        return int(self.rng.choice(len(NOISE_KINDS), p=np.asarray(weights)))

    def _noise(self, waveform: np.ndarray, index: int) -> np.ndarray:
        kind = NOISE_KINDS[self._noise_kind()]
        snr_db = float(self.rng.uniform(*self.config.noise_snr_db))
        others = self.babble_candidates(index)
        if kind == "white":
            noise = white_noise(waveform.size, self.rng)
        elif kind == "pink" or others.size == 0:  # no other speaker to make babble of
            noise = pink_noise(waveform.size, self.rng)
        else:
            pool = self.rng.choice(others, size=min(BABBLE_POOL, others.size), replace=False)
            sources = [self.clips.waveforms[int(i)] for i in pool]
            noise = babble_noise(sources, waveform.size, BABBLE_TALKERS, self.rng)
        return add_noise(waveform, noise, snr_db)
