"""Valence/arousal/dominance to the EmoSphere spherical space (Cho et al., EmoSphere-SER).

The affect point is centred on the model's neutral point; the centred (arousal, valence,
dominance) vector is turned into spherical coordinates: the radius is the emotion's intensity,
the two angles its style, and the signs of the three components name one of eight octants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from service.labels import OCTANTS

# EmoSphere sign table for the centred (arousal, valence, dominance): product brief, item 8.
OCTANT_SIGNS: Final[dict[tuple[bool, bool, bool], str]] = {
    (True, True, True): "I",
    (False, True, True): "II",
    (False, False, True): "III",
    (True, False, True): "IV",
    (True, True, False): "V",
    (False, True, False): "VI",
    (False, False, False): "VII",
    (True, False, False): "VIII",
}
assert sorted(OCTANT_SIGNS.values()) == sorted(OCTANTS)


@dataclass(frozen=True)
class SpherePoint:
    """An affect point in spherical coordinates around the neutral point.

    Attributes:
        radius: Euclidean distance from the neutral point, in [0, 1]-scale VAD units.
        intensity: ``radius`` divided by the largest radius possible inside the unit cube
            from this neutral point, so 0 is neutral and 1 the most extreme corner.
        azimuth_deg: angle in the arousal-valence plane, ``atan2(valence, arousal)`` of the
            centred point, in [0, 360).
        elevation_deg: angle above that plane towards dominance, in [-90, 90].
        octant: ``I`` .. ``VIII`` by the signs of centred (arousal, valence, dominance);
            a component exactly at the neutral point counts as positive.
    """

    radius: float
    intensity: float
    azimuth_deg: float
    elevation_deg: float
    octant: str


def to_sphere(vad: np.ndarray, neutral_vad: np.ndarray) -> SpherePoint:
    """Map one affect point to EmoSphere coordinates.

    Args:
        vad: ``(3,)`` valence, arousal, dominance in [0, 1].
        neutral_vad: ``(3,)`` the neutral point, same order.
    """
    valence, arousal, dominance = (float(x) for x in vad - neutral_vad)
    radius = math.sqrt(arousal**2 + valence**2 + dominance**2)
    elevation_rad = math.asin(dominance / radius) if radius > 0.0 else 0.0
    return SpherePoint(
        radius=radius,
        intensity=min(1.0, radius / max_radius(neutral_vad)),
        azimuth_deg=math.degrees(math.atan2(valence, arousal)) % 360.0,
        elevation_deg=math.degrees(elevation_rad),
        octant=octant_of(arousal, valence, dominance),
    )


def octant_of(arousal: float, valence: float, dominance: float) -> str:
    """EmoSphere octant of a centred point (signs of arousal, valence, dominance)."""
    return OCTANT_SIGNS[(arousal >= 0.0, valence >= 0.0, dominance >= 0.0)]


def max_radius(neutral_vad: np.ndarray) -> float:
    """Distance from the neutral point to the farthest corner of the unit cube."""
    farthest = np.maximum(neutral_vad, 1.0 - neutral_vad)
    return float(np.sqrt(np.sum(farthest**2)))
