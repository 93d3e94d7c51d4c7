"""Affect (valence, arousal, dominance) targets derived from labels through emotion-term norms.

No open corpus here has rated affect, so targets come from ``affect_norms.csv``: one published
table (NRC VAD Lexicon v1.0, Mohammad 2018), one row per canonical label, values in [0, 1].
Real ratings (``Utterance.vad``) always take precedence (:func:`affect_target`).
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Final

from service.labels import AFFECT_DIMENSIONS, CANONICAL_LABELS
from toolkit.data.types import Utterance

AFFECT_NORMS_PATH: Final[Path] = Path(__file__).with_name("affect_norms.csv")
"""The norms table shipped with the toolkit (header comments name source and terms)."""

DEFAULT_INTENSITY: Final[float] = 0.75
"""Intensity assumed when a corpus gives none (EmoDB, CREMA-D "XX"): the mean of RAVDESS's two
acted levels (normal 0.5, strong 1.0), i.e. a portrayal of ordinary acted strength."""

Affect = tuple[float, float, float]
"""(valence, arousal, dominance), each in [0, 1]."""


@cache
def load_affect_norms(path: Path = AFFECT_NORMS_PATH) -> dict[str, Affect]:
    """Canonical label -> (valence, arousal, dominance) from a norms CSV.

    Lines starting with ``#`` are comments. Raises ``ValueError`` when a canonical label is
    missing, a label is not canonical or a value is outside [0, 1].
    """
    with path.open(encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    norms = {row["label"]: _affect_of(row, path) for row in csv.DictReader(lines)}
    unknown = sorted(set(norms) - set(CANONICAL_LABELS))
    missing = [label for label in CANONICAL_LABELS if label not in norms]
    if unknown or missing:
        raise ValueError(f"{path}: unknown labels {unknown}, missing labels {missing}")
    return norms


def _affect_of(row: dict[str, str], path: Path) -> Affect:
    valence, arousal, dominance = (float(row[name]) for name in AFFECT_DIMENSIONS)
    if not all(0.0 <= value <= 1.0 for value in (valence, arousal, dominance)):
        raise ValueError(f"{path}: values of {row['label']!r} must lie in [0, 1]")
    return (valence, arousal, dominance)


def neutral_point(path: Path = AFFECT_NORMS_PATH) -> Affect:
    """The table's ``neutral`` entry: the centre of the EmoSphere affect space.

    Every table loaded by :func:`load_affect_norms` has a neutral row (it is a canonical
    label), so the [0, 1] midpoint is never needed as a fallback here.
    """
    return load_affect_norms(path)["neutral"]


def derive_vad(label: str, intensity: float | None, neutral: Affect | None = None) -> Affect:
    """Affect of an acted ``label`` at ``intensity``: neutral + intensity * (norm - neutral).

    Linear interpolation from the neutral point (intensity 0) to the term's norm (1).
    ``intensity`` ``None`` means :data:`DEFAULT_INTENSITY`. ``neutral`` defaults to
    :func:`neutral_point`. Raises ``ValueError`` for a non-canonical label or an intensity
    outside [0, 1].
    """
    norms = load_affect_norms()
    if label not in norms:
        raise ValueError(f"{label!r} is not a canonical label {CANONICAL_LABELS}")
    weight = DEFAULT_INTENSITY if intensity is None else intensity
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"intensity must be in [0, 1] or None, got {intensity}")
    centre = neutral if neutral is not None else neutral_point()
    v, a, d = (c + weight * (n - c) for c, n in zip(centre, norms[label], strict=True))
    return (v, a, d)


def affect_target(utterance: Utterance, neutral: Affect | None = None) -> Affect:
    """The utterance's rated affect when it has one, else :func:`derive_vad` of its label."""
    if utterance.vad is not None:
        return utterance.vad
    return derive_vad(utterance.label, utterance.intensity, neutral)
