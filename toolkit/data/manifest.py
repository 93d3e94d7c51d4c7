"""Generic CSV manifests: bring your own labelled speech, categorical, soft or dimensional.

Columns (header names exact, order free):

- ``path`` (required): audio file, absolute or relative to the CSV's folder;
- ``speaker`` (required): speaker id, unique within the corpus;
- ``label`` and/or ``p_<label>`` for canonical labels (at least one of them): ``p_`` columns
  hold probabilities or raw vote counts and are normalised per row (empty = 0); without
  ``label`` the label is the arg-max of the ``p_`` columns (ties: canonical order); without
  ``p_`` values the soft label is one-hot;
- ``valence``, ``arousal``, ``dominance`` (optional, all three or none per row): rated affect
  on the scale ``vad_range`` (default [0, 1]; e.g. ``(1, 5)`` for a 5-point SAM scale),
  rescaled linearly to [0, 1];
- ``gender`` (optional): female/male/f/m or empty; ``corpus`` (optional, default the CSV
  file name without extension); ``intensity`` (optional, [0, 1] or empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from service.labels import AFFECT_DIMENSIONS, CANONICAL_LABELS
from toolkit.data.corpora import parse_gender, parse_label
from toolkit.data.rows import Row, read_rows
from toolkit.data.soft_labels import normalise_weights, one_hot
from toolkit.data.types import Utterance

SOFT_PREFIX: Final[str] = "p_"
"""Prefix of the soft-label columns, e.g. ``p_angry``."""


def load_csv_manifest(
    path: Path, vad_range: tuple[float, float] = (0.0, 1.0), corpus: str | None = None
) -> list[Utterance]:
    """Utterances of the CSV manifest ``path`` (format in the module docstring).

    Raises :class:`DataRowError` (a ``ValueError``) naming line and column for a bad row,
    and ``ValueError`` for a bad header or ``vad_range``.
    """
    low, high = vad_range
    if not high > low:
        raise ValueError(f"vad_range must be (low, high) with high > low, got {vad_range}")
    rows = list(read_rows(path, ("path", "speaker")))
    soft_columns = _soft_columns(path, rows)
    default_corpus = corpus or path.stem
    return [_utterance(row, soft_columns, vad_range, default_corpus) for row in rows]


def _soft_columns(path: Path, rows: list[Row]) -> dict[str, str]:
    """Map ``p_<label>`` column -> label; checks the header allows a label per row."""
    header = list(rows[0].values) if rows else []
    soft = {name: name[len(SOFT_PREFIX) :] for name in header if name.startswith(SOFT_PREFIX)}
    unknown = [name for name, label in soft.items() if label not in CANONICAL_LABELS]
    if unknown:
        raise ValueError(f"{path}: column(s) {unknown} name no canonical label {CANONICAL_LABELS}")
    if rows and not soft and "label" not in header:
        raise ValueError(f"{path}: needs a 'label' column or 'p_<label>' columns")
    return soft


def _utterance(
    row: Row, soft_columns: dict[str, str], vad_range: tuple[float, float], corpus: str
) -> Utterance:
    weights = _soft_weights(row, soft_columns)
    label = parse_label(row, "label") if row.get("label") else _argmax_label(row, weights)
    return Utterance(
        path=_audio_path(row),
        corpus=row.get("corpus") or corpus,
        speaker=row.require("speaker"),
        label=label,
        soft_label=normalise_weights(weights) if weights else one_hot(label),
        gender=parse_gender(row, "gender"),
        intensity=row.float_in("intensity", 0.0, 1.0),
        vad=_vad(row, vad_range),
    )


def _audio_path(row: Row) -> Path:
    path = Path(row.require("path"))
    if not path.is_absolute():
        path = row.path.parent / path
    if not path.is_file():
        raise row.error("path", f"audio file {path} does not exist")
    return path


def _soft_weights(row: Row, soft_columns: dict[str, str]) -> dict[str, float]:
    """Positive soft-label weights of the row (``{}`` when every ``p_`` cell is 0 or empty)."""
    weights: dict[str, float] = {}
    for column, label in soft_columns.items():
        weight = row.float_in(column, 0.0, float("inf"))
        if weight:
            weights[label] = weight
    return weights


def _argmax_label(row: Row, weights: dict[str, float]) -> str:
    if not weights:
        raise row.error("label", "no label and no positive p_<label> value")
    best = max(weights.values())
    return next(label for label in CANONICAL_LABELS if weights.get(label) == best)


def _vad(row: Row, vad_range: tuple[float, float]) -> tuple[float, float, float] | None:
    """Rated (valence, arousal, dominance) rescaled from ``vad_range`` to [0, 1], or None."""
    low, high = vad_range
    values = [row.float_in(name, low, high) for name in AFFECT_DIMENSIONS]
    present = [value for value in values if value is not None]
    if not present:
        return None
    if len(present) < len(values):
        missing = [
            name for name, value in zip(AFFECT_DIMENSIONS, values, strict=True) if value is None
        ]
        raise row.error(missing[0], "valence, arousal and dominance must be given together")
    valence, arousal, dominance = ((value - low) / (high - low) for value in present)
    return (valence, arousal, dominance)
