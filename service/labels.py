"""Canonical vocabulary shared by the service, the manifests and the toolkit."""

from typing import Final

CANONICAL_LABELS: Final[tuple[str, ...]] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "bored",
)
"""Emotion labels every model maps onto (product brief, "Interface")."""

AFFECT_DIMENSIONS: Final[tuple[str, str, str]] = ("valence", "arousal", "dominance")
"""Order of the columns of every ``vad`` model output, each in [0, 1]."""

OCTANTS: Final[tuple[str, ...]] = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")
"""EmoSphere octants, in the order of every ``octant`` model output (Cho et al.)."""
