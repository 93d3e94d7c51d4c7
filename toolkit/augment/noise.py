"""Additive noise at a requested signal-to-noise ratio, and noise generators.

SNR is defined by mean power over the whole clip: SNR_dB = 10 log10(mean(s^2) / mean(n^2)),
where ``n`` is the scaled noise actually added (silences included on both sides).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from toolkit.data.types import Utterance

NOISE_KINDS: tuple[str, str, str] = ("white", "pink", "babble")
"""The noises of training and of the robustness evaluation, in this order everywhere
(``AugmentConfig.noise_kind_weights``, ``results.json`` conditions, the card's rows)."""


def mean_power(signal: np.ndarray) -> float:
    """Mean of the squared samples (signal units squared)."""
    return float(np.mean(np.square(np.asarray(signal, dtype=np.float64))))


def fit_length(signal: np.ndarray, n_samples: int, offset: int = 0) -> np.ndarray:
    """``signal`` repeated cyclically and cut to ``n_samples``, starting at ``offset``."""
    if signal.size == 0:
        raise ValueError("cannot fit an empty signal to a length")
    indices = (offset + np.arange(n_samples)) % signal.size
    return signal[indices]


def add_noise(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` plus ``noise`` scaled to ``snr_db`` (whole-clip mean powers), float32.

    ``noise`` is repeated or cut to the length of ``signal``. Raises ``ValueError`` when the
    signal or the noise is silent (the SNR would be undefined).
    """
    clean = np.asarray(signal, dtype=np.float64)
    fitted = fit_length(np.asarray(noise, dtype=np.float64), clean.size)
    signal_power, noise_power = mean_power(clean), mean_power(fitted)
    if signal_power == 0 or noise_power == 0:
        raise ValueError("signal and noise must both have non-zero power to set an SNR")
    scale = math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (clean + scale * fitted).astype(np.float32)


def _unit_power(noise: np.ndarray) -> np.ndarray:
    return (noise / math.sqrt(mean_power(noise))).astype(np.float32)


def white_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise, shape ``(n_samples,)``, float32, mean power 1."""
    return _unit_power(rng.standard_normal(n_samples))


def pink_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise by spectral shaping, shape ``(n_samples,)``, float32, mean power 1.

    White Gaussian noise is transformed with an FFT, each bin's amplitude multiplied by
    1/sqrt(f) (so power falls as 1/f, -3 dB per octave), the DC bin set to 0, and
    transformed back.
    """
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    frequency_bins = np.arange(spectrum.size, dtype=np.float64)
    shaping = np.zeros_like(frequency_bins)
    shaping[1:] = 1.0 / np.sqrt(frequency_bins[1:])
    return _unit_power(np.fft.irfft(spectrum * shaping, n=n_samples))


def babble_noise(
    signals_of_other_speakers: Sequence[np.ndarray],
    n_samples: int,
    n_talkers: int = 4,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Babble: the sum of ``n_talkers`` clips, each at mean power 1 from a random offset.

    The caller passes clips of speakers *other* than the one the babble will be added to
    (see :func:`babble_sources`). Clips are drawn without replacement when there are enough,
    repeated cyclically to ``n_samples``. Returns float32 of mean power 1.
    """
    generator = rng or np.random.default_rng()
    if not signals_of_other_speakers or n_talkers < 1:
        raise ValueError("need at least one clip and n_talkers >= 1")
    replace = n_talkers > len(signals_of_other_speakers)
    chosen = generator.choice(len(signals_of_other_speakers), size=n_talkers, replace=replace)
    mixture = np.zeros(n_samples, dtype=np.float64)
    for index in chosen:
        clip = np.asarray(signals_of_other_speakers[int(index)], dtype=np.float64)
        if mean_power(clip) > 0:
            offset = int(generator.integers(0, clip.size))
            mixture += fit_length(clip, n_samples, offset) / math.sqrt(mean_power(clip))
    if mean_power(mixture) == 0:
        raise ValueError("every babble clip is silent")
    return _unit_power(mixture)


def babble_sources(
    utterances: Iterable[Utterance], exclude_speaker_keys: Iterable[str]
) -> list[Utterance]:
    """Utterances whose speaker is not in ``exclude_speaker_keys`` (candidates for babble)."""
    excluded = set(exclude_speaker_keys)
    return [utterance for utterance in utterances if utterance.speaker_key not in excluded]
