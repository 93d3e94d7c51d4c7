"""EmoSphere coordinates and octants (sign table from the product brief, item 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.postprocess.affect import max_radius, octant_of, to_sphere

NEUTRAL = np.array([0.5, 0.5, 0.5])


@pytest.mark.parametrize(
    ("arousal", "valence", "dominance", "octant"),
    [
        (1, 1, 1, "I"),
        (-1, 1, 1, "II"),
        (-1, -1, 1, "III"),
        (1, -1, 1, "IV"),
        (1, 1, -1, "V"),
        (-1, 1, -1, "VI"),
        (-1, -1, -1, "VII"),
        (1, -1, -1, "VIII"),
    ],
)
def test_sign_table(arousal: float, valence: float, dominance: float, octant: str) -> None:
    assert octant_of(arousal, valence, dominance) == octant


def test_angry_like_point() -> None:
    # high arousal, low valence, high dominance: octant IV
    point = to_sphere(np.array([0.2, 0.9, 0.7]), NEUTRAL)
    assert point.octant == "IV"
    assert point.radius == pytest.approx(math.sqrt(0.3**2 + 0.4**2 + 0.2**2))
    assert point.azimuth_deg == pytest.approx(math.degrees(math.atan2(-0.3, 0.4)) + 360.0)
    assert point.elevation_deg == pytest.approx(math.degrees(math.asin(0.2 / point.radius)))
    assert point.intensity == pytest.approx(point.radius / math.sqrt(0.75))


def test_neutral_point_has_zero_intensity() -> None:
    point = to_sphere(NEUTRAL.copy(), NEUTRAL)
    assert (point.radius, point.intensity, point.elevation_deg, point.octant) == (0, 0, 0, "I")


def test_intensity_reaches_one_at_the_farthest_corner() -> None:
    neutral = np.array([0.6, 0.4, 0.5])
    assert max_radius(neutral) == pytest.approx(math.sqrt(0.6**2 + 0.6**2 + 0.5**2))
    assert to_sphere(np.array([0.0, 1.0, 0.0]), neutral).intensity == pytest.approx(1.0)
