"""Energy-adaptive mixup on real RAVDESS speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from toolkit.augment.eam import donor_weight, eam_draw, eam_mix, mix_segment
from toolkit.augment.noise import mean_power, white_noise
from toolkit.data import load_ravdess


@pytest.fixture(scope="module")
def clips() -> tuple[np.ndarray, np.ndarray]:
    utterances = load_ravdess()
    host = next(u for u in utterances if u.speaker == "01" and u.label == "angry")
    donor = next(u for u in utterances if u.speaker == "02" and u.label == "sad")
    return sf.read(host.path, dtype="float32")[0], sf.read(donor.path, dtype="float32")[0]


HOST_SOFT = np.array([1.0, 0.0, 0.0])
DONOR_SOFT = np.array([0.0, 0.6, 0.4])


@pytest.mark.parametrize("seed", range(10))
def test_mix_snr_equals_drawn_snr(clips: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    host, donor = clips
    draw = eam_draw(host.size, donor.size, np.random.default_rng(seed))
    mixed, soft = eam_mix(host, donor, HOST_SOFT, DONOR_SOFT, np.random.default_rng(seed))
    assert mixed.dtype == np.float32 and mixed.shape == host.shape
    assert np.max(np.abs(mixed)) <= 1.0
    stretch = slice(draw.host_start, draw.host_start + draw.segment_samples)
    added = mixed[stretch].astype(np.float64) - host[stretch]
    measured_db = 10 * np.log10(mean_power(host) / mean_power(added))
    assert measured_db == pytest.approx(draw.snr_db, abs=0.1)
    assert -5.0 <= draw.snr_db <= 5.0 and draw.segment_samples <= host.size // 2
    assert soft.sum() == pytest.approx(1.0, abs=1e-6)
    weight = float(soft[1] / 0.6)
    assert 0.0 < weight <= draw.segment_samples / host.size
    assert soft == pytest.approx([1 - weight, 0.6 * weight, 0.4 * weight], abs=1e-6)


def test_donor_weight_formula() -> None:
    assert donor_weight(0.5, host_energy=1.0, donor_energy=1.0) == 0.25
    assert donor_weight(0.5, host_energy=1.0, donor_energy=3.0) == 0.375
    assert donor_weight(0.25, host_energy=1.0, donor_energy=1.0) == 0.125
    assert donor_weight(0.5, host_energy=0.0, donor_energy=0.0) == 0.0


def test_weight_grows_with_donor_energy(clips: tuple[np.ndarray, np.ndarray]) -> None:
    host, donor = clips
    segment = donor[8000:24000]
    weights = [mix_segment(host, segment, 10000, snr_db)[1] for snr_db in (5.0, 0.0, -5.0)]
    assert weights[0] < weights[1] < weights[2] <= segment.size / host.size


def test_weight_grows_with_donor_length() -> None:
    rng = np.random.default_rng(0)
    host, donor = 0.1 * white_noise(32000, rng), 0.1 * white_noise(32000, rng)
    weights = [mix_segment(host, donor[:length], 0, 0.0)[1] for length in (4000, 8000, 16000)]
    # equal powers at 0 dB: energy share ~ 1/2, so weight ~ time_fraction / 2
    assert weights == pytest.approx([0.0625, 0.125, 0.25], rel=0.05)


def test_silent_donor_leaves_host_unchanged(clips: tuple[np.ndarray, np.ndarray]) -> None:
    host, _ = clips
    mixed, weight = mix_segment(host, np.zeros(1000, dtype=np.float32), 0, 0.0)
    assert weight == 0.0 and np.array_equal(mixed, host)


def test_too_short_inputs() -> None:
    with pytest.raises(ValueError, match="too short"):
        eam_draw(1, 10, np.random.default_rng(0))
