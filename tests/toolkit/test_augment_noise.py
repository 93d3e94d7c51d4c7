"""Additive noise at a set SNR, on real RAVDESS speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from toolkit.augment.noise import (
    add_noise,
    babble_noise,
    babble_sources,
    mean_power,
    pink_noise,
    white_noise,
)
from toolkit.data import Utterance, load_ravdess


@pytest.fixture(scope="module")
def ravdess() -> list[Utterance]:
    return load_ravdess()


def _audio(utterance: Utterance) -> np.ndarray:
    signal, sampling_rate_hz = sf.read(utterance.path, dtype="float32")
    assert sampling_rate_hz == 16000
    return np.asarray(signal)


def _snr_db(clean: np.ndarray, mixed: np.ndarray) -> float:
    return float(10 * np.log10(mean_power(clean) / mean_power(mixed.astype(np.float64) - clean)))


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 5.0, 0.0])
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_measured_snr_matches_request(ravdess: list[Utterance], snr_db: float, kind: str) -> None:
    speech = _audio(ravdess[0])
    rng = np.random.default_rng(1)
    noise = white_noise(8000, rng) if kind == "white" else pink_noise(8000, rng)  # tiled
    mixed = add_noise(speech, noise, snr_db)
    assert mixed.dtype == np.float32 and mixed.shape == speech.shape
    assert _snr_db(speech, mixed) == pytest.approx(snr_db, abs=0.01)


def test_silent_signal_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-zero power"):
        add_noise(np.zeros(100, dtype=np.float32), np.ones(100, dtype=np.float32), 10.0)


def test_generators_have_unit_power() -> None:
    rng = np.random.default_rng(0)
    assert mean_power(white_noise(4096, rng)) == pytest.approx(1.0, rel=1e-5)
    assert mean_power(pink_noise(4096, rng)) == pytest.approx(1.0, rel=1e-5)


def test_pink_noise_power_falls_as_one_over_f() -> None:
    noise = pink_noise(2**16, np.random.default_rng(0)).astype(np.float64)
    power = np.abs(np.fft.rfft(noise)) ** 2
    bins = np.arange(power.size)
    octaves = [(2**k, 2 ** (k + 1)) for k in range(4, 14)]
    band_power = [power[lo:hi].mean() for lo, hi in octaves]
    centres = [np.sqrt(lo * hi) for lo, hi in octaves]
    slope = np.polyfit(np.log(centres), np.log(band_power), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    assert bins.size == 2**15 + 1


def test_babble_from_other_speakers(ravdess: list[Utterance]) -> None:
    sources = babble_sources(ravdess, exclude_speaker_keys=["ravdess/01"])
    assert len(sources) == 1140 and all(u.speaker != "01" for u in sources)
    talkers = [_audio(u) for u in sources[::300]]  # 4 clips of different actors
    babble = babble_noise(talkers, 48000, n_talkers=4, rng=np.random.default_rng(0))
    assert babble.shape == (48000,) and babble.dtype == np.float32
    assert mean_power(babble) == pytest.approx(1.0, rel=1e-5)
    host = _audio(ravdess[0])
    assert _snr_db(host, add_noise(host, babble, 5.0)) == pytest.approx(5.0, abs=0.01)
