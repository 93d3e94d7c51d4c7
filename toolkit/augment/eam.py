"""Energy-adaptive mixup (EAM, Wang et al.; product brief, item 1).

A random segment of the donor (at most ``max_donor_fraction`` of the host's length) is scaled
so that host power / donor power equals an SNR drawn uniformly from ``snr_range_db`` and added
into a random stretch of the host:

    scale = sqrt(P_host / (10^(SNR/10) * P_donor))

with P_host the mean power of the whole host clip and P_donor the mean power of the donor
segment. The mixed clip's soft label weights each source by its share of time and energy:

    time_fraction = segment_samples / host_samples
    energy_share  = E_donor / (E_donor + E_host), both summed over the overlapping stretch
    donor_weight  = time_fraction * energy_share,   host_weight = 1 - donor_weight
    soft_label    = host_weight * host_soft + donor_weight * donor_soft

Why this product: the donor is audible only during ``time_fraction`` of the clip, so it can
never claim more than that share; inside the overlap, the louder source dominates what a
listener (and a model) hears, so the overlap is split by energy. The donor weight is 0 for a
silent or zero-length donor, grows with donor energy (lower SNR) and with segment length, and
never exceeds ``max_donor_fraction``. If the mix peaks above 1 it is scaled down as a whole,
which changes neither the SNR nor the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toolkit.augment.noise import mean_power


def donor_scale(host_power: float, donor_power: float, snr_db: float) -> float:
    """Gain that puts the donor ``snr_db`` below the host (mean powers); 0 for a silent donor."""
    if donor_power <= 0:
        return 0.0
    return math.sqrt(host_power / (10.0 ** (snr_db / 10.0) * donor_power))


def donor_weight(time_fraction: float, host_energy: float, donor_energy: float) -> float:
    """time_fraction * donor_energy / (donor_energy + host_energy) (0 when both are 0)."""
    total = host_energy + donor_energy
    return float(time_fraction * donor_energy / total) if total > 0 else 0.0


def mix_segment(
    host: np.ndarray, donor_segment: np.ndarray, host_start: int, snr_db: float
) -> tuple[np.ndarray, float]:
    """Add ``donor_segment`` into ``host`` from sample ``host_start`` at ``snr_db``.

    Returns the mixed clip (float32, shape of ``host``) and the donor weight (module docstring).
    """
    clean = np.asarray(host, dtype=np.float64)
    segment = np.asarray(donor_segment, dtype=np.float64)
    stop = host_start + segment.size
    if host_start < 0 or stop > clean.size:
        raise ValueError(
            f"segment [{host_start}, {stop}) does not fit a host of {clean.size} samples"
        )
    scaled = donor_scale(mean_power(clean), mean_power(segment), snr_db) * segment
    mixed = clean.copy()
    mixed[host_start:stop] += scaled
    weight = donor_weight(
        segment.size / clean.size,
        float(np.sum(clean[host_start:stop] ** 2)),
        float(np.sum(scaled**2)),
    )
    peak = float(np.max(np.abs(mixed)))
    if peak > 1.0:
        mixed /= peak
    return mixed.astype(np.float32), weight


@dataclass(frozen=True)
class EamDraw:
    """The random choices of one EAM sample (sample indices and dB)."""

    segment_samples: int
    donor_start: int
    host_start: int
    snr_db: float


def eam_draw(
    host_samples: int,
    donor_samples: int,
    rng: np.random.Generator,
    max_donor_fraction: float = 0.5,
    snr_range_db: tuple[float, float] = (-5.0, 5.0),
) -> EamDraw:
    """Draw segment length, donor start, host start and SNR, in that order, uniformly.

    The segment length runs from 1 to ``floor(max_donor_fraction * host_samples)`` (and at
    most ``donor_samples``). Raises ``ValueError`` when no segment fits.
    """
    if not 0.0 < max_donor_fraction <= 1.0:
        raise ValueError(f"max_donor_fraction must be in (0, 1], got {max_donor_fraction}")
    longest = min(int(max_donor_fraction * host_samples), donor_samples)
    if longest < 1:
        raise ValueError("host and donor are too short to cut a donor segment")
    length = int(rng.integers(1, longest + 1))
    return EamDraw(
        segment_samples=length,
        donor_start=int(rng.integers(0, donor_samples - length + 1)),
        host_start=int(rng.integers(0, host_samples - length + 1)),
        snr_db=float(rng.uniform(*snr_range_db)),
    )


def eam_mix(
    host: np.ndarray,
    donor: np.ndarray,
    host_soft: np.ndarray,
    donor_soft: np.ndarray,
    rng: np.random.Generator,
    max_donor_fraction: float = 0.5,
    snr_range_db: tuple[float, float] = (-5.0, 5.0),
) -> tuple[np.ndarray, np.ndarray]:
    """One EAM sample: (mixed clip float32 ``(host_samples,)``, soft label ``(C,)`` float32).

    ``host_soft`` and ``donor_soft`` are distributions of shape ``(C,)`` over the same labels.
    The random choices are those of :func:`eam_draw` with the same ``rng`` state.
    """
    draw = eam_draw(host.size, donor.size, rng, max_donor_fraction, snr_range_db)
    segment = donor[draw.donor_start : draw.donor_start + draw.segment_samples]
    mixed, weight = mix_segment(host, segment, draw.host_start, draw.snr_db)
    host_part = (1.0 - weight) * np.asarray(host_soft, dtype=np.float64)
    soft = host_part + weight * np.asarray(donor_soft, dtype=np.float64)
    return mixed, (soft / soft.sum()).astype(np.float32)
