"""Adapters for the shared corpora: RAVDESS, EmoDB and CREMA-D metadata -> Utterance.

Each corpus folder holds ``metadata.csv`` (its ``file`` column is relative to the folder)
and 16 kHz FLAC audio (README and SOURCE.md of the shared data folder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from service.labels import CANONICAL_LABELS
from toolkit.data.paths import data_dir
from toolkit.data.rows import Row, read_rows
from toolkit.data.soft_labels import normalise_weights, one_hot, recognition_soft_label
from toolkit.data.types import Utterance

RAVDESS_INTENSITY: Final[dict[str, float]] = {"normal": 0.5, "strong": 1.0}
"""RAVDESS acts each emotion at two levels, normal and strong (Livingstone & Russo 2018);
strong is the top of our [0, 1] scale and normal its midpoint."""

EMODB_LABELS: Final[tuple[str, ...]] = (
    "angry",
    "bored",
    "disgust",
    "fearful",
    "happy",
    "sad",
    "neutral",
)
"""The 7 EmoDB emotions (codes W, L, E, A, F, T, N; Burkhardt et al. 2005) as canonical labels."""

EMODB_SPEAKER_GENDER: Final[dict[str, str]] = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
"""Speaker genders from the EmoDB documentation ("Information about the speakers",
emodb.bilderbar.info; Burkhardt et al. 2005). The shared ``metadata.csv`` swaps the genders
of speakers 09, 10, 12 and 13 (its ages agree with the documentation), so the adapter takes
gender from this table and the metadata column only for speakers absent from it."""

CREMAD_VOTE_LABELS: Final[dict[str, str]] = {
    "A": "angry",
    "D": "disgust",
    "F": "fearful",
    "H": "happy",
    "N": "neutral",
    "S": "sad",
}
"""CREMA-D rater response codes (Cao et al. 2014, tabulatedVotes.csv) -> canonical labels."""

CREMAD_INTENSITY: Final[dict[str, float | None]] = {
    "LO": 0.33,
    "MD": 0.67,
    "HI": 1.0,
    "XX": None,
}
"""CREMA-D acted intensity codes (low, medium, high, unspecified; Cao et al. 2014) as three
equally spaced levels of our [0, 1] scale; XX (unspecified) has no level."""

GENDERS: Final[dict[str, str]] = {"female": "female", "f": "female", "male": "male", "m": "male"}
"""Accepted spellings of the gender column (case-insensitive); empty means unknown."""


def load_ravdess(root: Path | None = None) -> list[Utterance]:
    """RAVDESS speech clips: 8 acted emotions, soft label one-hot, intensity 0.5 / 1.0.

    ``root`` defaults to ``data_dir() / "ravdess"``. Raises ``FileNotFoundError`` when a
    clip listed in ``metadata.csv`` is missing and :class:`DataRowError` for a bad row.
    """
    root = root or data_dir() / "ravdess"
    rows = read_rows(root / "metadata.csv", ("file", "speaker", "gender", "emotion", "intensity"))
    return _require_audio([_ravdess_utterance(root, row) for row in rows])


def _ravdess_utterance(root: Path, row: Row) -> Utterance:
    label = parse_label(row, "emotion")
    intensity_name = row.require("intensity")
    if intensity_name not in RAVDESS_INTENSITY:
        raise row.error("intensity", f"expected one of {sorted(RAVDESS_INTENSITY)}")
    return Utterance(
        path=root / row.require("file"),
        corpus="ravdess",
        speaker=row.require("speaker"),
        label=label,
        soft_label=one_hot(label),
        gender=parse_gender(row, "gender"),
        intensity=RAVDESS_INTENSITY[intensity_name],
    )


def load_emodb(root: Path | None = None) -> list[Utterance]:
    """EmoDB clips with soft labels from the listener test, intensity ``None``.

    Gender comes from :data:`EMODB_SPEAKER_GENDER` (the metadata column is wrong for 4
    speakers).

    p(acted label) = ``recognition_pct`` / 100; the remainder is spread uniformly over the
    other 6 EmoDB labels (the perception test reports only the recognition rate). ``root``
    defaults to ``data_dir() / "emodb"``. Raises like :func:`load_ravdess`.
    """
    root = root or data_dir() / "emodb"
    columns = ("file", "speaker", "gender", "emotion", "recognition_pct")
    rows = read_rows(root / "metadata.csv", columns)
    return _require_audio([_emodb_utterance(root, row) for row in rows])


def _emodb_utterance(root: Path, row: Row) -> Utterance:
    label = parse_label(row, "emotion")
    if label not in EMODB_LABELS:
        raise row.error("emotion", f"{label!r} is not an EmoDB emotion {EMODB_LABELS}")
    recognition_pct = row.float_in("recognition_pct", 0.0, 100.0)
    if recognition_pct is None:
        raise row.error("recognition_pct", "value is missing")
    speaker = row.require("speaker")
    return Utterance(
        path=root / row.require("file"),
        corpus="emodb",
        speaker=speaker,
        label=label,
        soft_label=recognition_soft_label(label, recognition_pct / 100.0, EMODB_LABELS),
        gender=EMODB_SPEAKER_GENDER.get(speaker) or parse_gender(row, "gender"),
    )


def load_cremad(root: Path | None = None) -> list[Utterance]:
    """CREMA-D clips whose audio file exists, soft labels from voice-only crowd votes.

    The shared folder holds metadata only (no audio), so this returns ``[]`` there; drop
    16 kHz FLACs into ``<root>/audio/`` to use it. ``root`` defaults to
    ``data_dir() / "crema-d"``. Raises :class:`DataRowError` for a bad row.
    """
    root = root or data_dir() / "crema-d"
    vote_columns = [f"voice_votes_{code}" for code in CREMAD_VOTE_LABELS]
    columns = ("file", "speaker", "gender", "emotion", "intensity_code", *vote_columns)
    rows = read_rows(root / "metadata.csv", columns)
    return [_cremad_utterance(root, row) for row in rows if (root / row.require("file")).is_file()]


def _cremad_utterance(root: Path, row: Row) -> Utterance:
    label = parse_label(row, "emotion")
    code = row.require("intensity_code")
    if code not in CREMAD_INTENSITY:
        raise row.error("intensity_code", f"expected one of {sorted(CREMAD_INTENSITY)}")
    return Utterance(
        path=root / row.require("file"),
        corpus="crema-d",
        speaker=row.require("speaker"),
        label=label,
        soft_label=_cremad_votes(row) or one_hot(label),
        gender=parse_gender(row, "gender"),
        intensity=CREMAD_INTENSITY[code],
    )


def _cremad_votes(row: Row) -> dict[str, float]:
    """Voice-only vote counts as a distribution; ``{}`` when the clip has no votes."""
    votes: dict[str, float] = {}
    for code, label in CREMAD_VOTE_LABELS.items():
        column = f"voice_votes_{code}"
        count = row.float_in(column, 0.0, float("inf"))
        votes[label] = count or 0.0
    return normalise_weights(votes) if sum(votes.values()) > 0 else {}


def parse_label(row: Row, column: str) -> str:
    """Canonical label in ``column`` (case-insensitive); :class:`DataRowError` otherwise."""
    label = row.require(column).lower()
    if label not in CANONICAL_LABELS:
        raise row.error(column, f"{label!r} is not a canonical label {CANONICAL_LABELS}")
    return label


def parse_gender(row: Row, column: str) -> str | None:
    """``"female"``, ``"male"`` or ``None`` (empty); :class:`DataRowError` otherwise."""
    text = row.get(column).lower()
    if not text:
        return None
    if text not in GENDERS:
        raise row.error(column, f"{text!r} is not one of {sorted(GENDERS)} (or empty)")
    return GENDERS[text]


def _require_audio(utterances: list[Utterance]) -> list[Utterance]:
    missing = [utterance.path for utterance in utterances if not utterance.path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} audio file(s) listed but missing, e.g. {missing[0]}"
        )
    return utterances


CorpusLoader = Callable[[Path | None], list[Utterance]]
"""Signature of every built-in corpus adapter."""

BUILTIN_CORPORA: Final[dict[str, CorpusLoader]] = {
    "ravdess": load_ravdess,
    "emodb": load_emodb,
    "crema-d": load_cremad,
}
"""Corpus name (the folder name under :func:`data_dir`) -> adapter."""


def corpus_names() -> Iterable[str]:
    """Names accepted by :func:`toolkit.data.registry.load_corpus`."""
    return BUILTIN_CORPORA.keys()
