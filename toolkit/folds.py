"""Speaker-independent folds: every speaker is tested exactly once and never trained on then.

Each fold holds speaker keys (``Utterance.speaker_key``, ``corpus/speaker``) in three disjoint
roles: test, validation (for early stopping and calibration, taken from the training
speakers) and train. Speakers are dealt to test sets gender by gender so that every fold gets
as even a share of each gender as the counts allow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from toolkit.data.types import Utterance

FOLDS_FORMAT: Final[str] = "ser-folds/1"
"""Value of the ``format`` key of a folds JSON file."""


@dataclass(frozen=True)
class Fold:
    """Speaker keys of one fold, in three disjoint roles (each tuple sorted)."""

    test_speakers: tuple[str, ...]
    validation_speakers: tuple[str, ...]
    train_speakers: tuple[str, ...]


@dataclass(frozen=True)
class FoldSettings:
    """How many folds and validation speakers a corpus uses by default."""

    n_folds: int
    validation_speakers_per_fold: int


DEFAULT_FOLD_SETTINGS: Final[dict[str, FoldSettings]] = {
    "ravdess": FoldSettings(n_folds=5, validation_speakers_per_fold=2),
    "emodb": FoldSettings(n_folds=4, validation_speakers_per_fold=2),
}
"""RAVDESS: 20 actors -> 5 folds of 4 test actors (2 male, 2 female), 2 validation actors
(1 + 1) and 14 training actors. EmoDB (8 speakers here): 4 folds of 2 test speakers (1 + 1),
2 validation speakers and 4 training speakers."""


def speaker_genders(utterances: Iterable[Utterance]) -> dict[str, str | None]:
    """Speaker key -> gender. Raises ``ValueError`` when a speaker's clips disagree."""
    genders: dict[str, str | None] = {}
    for utterance in utterances:
        key = utterance.speaker_key
        if genders.setdefault(key, utterance.gender) != utterance.gender:
            raise ValueError(
                f"speaker {key} has clips labelled {genders[key]} and {utterance.gender}"
            )
    return genders


def make_folds(
    utterances: Sequence[Utterance], n_folds: int, seed: int, validation_speakers_per_fold: int
) -> list[Fold]:
    """Split the speakers of ``utterances`` into ``n_folds`` speaker-independent folds.

    Deterministic for a given ``seed``. Raises ``ValueError`` when there are fewer speakers
    than folds or too few training speakers to leave any after taking the validation ones.
    """
    genders = speaker_genders(utterances)
    if not 2 <= n_folds <= len(genders):
        raise ValueError(
            f"n_folds must be in [2, {len(genders)}] (number of speakers), got {n_folds}"
        )
    rng = np.random.default_rng(seed)
    test_sets = _deal_by_gender(genders, n_folds, rng)
    return [_fold(test, genders, validation_speakers_per_fold, rng) for test in test_sets]


def default_folds(utterances: Sequence[Utterance], seed: int = 0) -> list[Fold]:
    """Folds with the corpus's :data:`DEFAULT_FOLD_SETTINGS` (one corpus at a time)."""
    corpora = sorted({utterance.corpus for utterance in utterances})
    if len(corpora) != 1 or corpora[0] not in DEFAULT_FOLD_SETTINGS:
        raise ValueError(
            f"default folds exist for one of {sorted(DEFAULT_FOLD_SETTINGS)}, got corpora "
            f"{corpora}: call make_folds with explicit settings"
        )
    settings = DEFAULT_FOLD_SETTINGS[corpora[0]]
    return make_folds(utterances, settings.n_folds, seed, settings.validation_speakers_per_fold)


def _by_gender(
    speakers: Iterable[str], genders: dict[str, str | None], rng: np.random.Generator
) -> list[list[str]]:
    """Speakers grouped by gender (female, male, unknown), each group shuffled by ``rng``."""
    groups: list[list[str]] = []
    for gender in ("female", "male", None):
        group = sorted(key for key in speakers if genders[key] == gender)
        groups.append([group[i] for i in rng.permutation(len(group))])
    return groups


def _deal_by_gender(
    genders: dict[str, str | None], n_folds: int, rng: np.random.Generator
) -> list[list[str]]:
    """Deal speakers round-robin into test sets, one gender after another.

    The dealing position carries over between genders, so fold sizes differ by at most one
    and each gender is spread as evenly as its count allows.
    """
    test_sets: list[list[str]] = [[] for _ in range(n_folds)]
    position = 0
    for group in _by_gender(genders, genders, rng):
        for key in group:
            test_sets[position % n_folds].append(key)
            position += 1
    return test_sets


def _fold(
    test: list[str], genders: dict[str, str | None], n_validation: int, rng: np.random.Generator
) -> Fold:
    rest = [key for key in genders if key not in set(test)]
    if not 0 <= n_validation < len(rest):
        raise ValueError(
            f"validation_speakers_per_fold must be in [0, {len(rest) - 1}] to leave training "
            f"speakers, got {n_validation}"
        )
    validation = _pick_balanced(rest, genders, n_validation, rng)
    train = [key for key in rest if key not in set(validation)]
    return Fold(tuple(sorted(test)), tuple(sorted(validation)), tuple(sorted(train)))


def _pick_balanced(
    speakers: list[str], genders: dict[str, str | None], count: int, rng: np.random.Generator
) -> list[str]:
    """``count`` speakers taken alternately from the gender groups, largest group first."""
    groups = sorted(_by_gender(speakers, genders, rng), key=len, reverse=True)
    picked: list[str] = []
    while len(picked) < count:
        for group in groups:
            if group and len(picked) < count:
                picked.append(group.pop(0))
    return picked


def check_independent(folds: Sequence[Fold]) -> None:
    """Raise ``ValueError`` if a speaker holds two roles in a fold or is tested twice."""
    tested: set[str] = set()
    for index, fold in enumerate(folds):
        roles = (fold.test_speakers, fold.validation_speakers, fold.train_speakers)
        members = [key for role in roles for key in role]
        repeated = sorted({key for key in members if members.count(key) > 1})
        if repeated:
            raise ValueError(f"fold {index}: speakers {repeated} hold more than one role")
        twice = sorted(tested & set(fold.test_speakers))
        if twice:
            raise ValueError(
                f"fold {index}: speakers {twice} are already tested in an earlier fold"
            )
        tested |= set(fold.test_speakers)


def save_folds(folds: Sequence[Fold], path: Path) -> None:
    """Write folds as JSON (``{"format": "ser-folds/1", "folds": [...]}``) after checking them."""
    check_independent(folds)
    records = [
        {
            "test_speakers": list(fold.test_speakers),
            "validation_speakers": list(fold.validation_speakers),
            "train_speakers": list(fold.train_speakers),
        }
        for fold in folds
    ]
    path.write_text(json.dumps({"format": FOLDS_FORMAT, "folds": records}, indent=2) + "\n")


def load_folds(path: Path) -> list[Fold]:
    """Read folds written by :func:`save_folds`; raises ``ValueError`` on a bad file."""
    document = json.loads(path.read_text())
    if not isinstance(document, dict) or document.get("format") != FOLDS_FORMAT:
        raise ValueError(f"{path}: not a folds file (expected format {FOLDS_FORMAT!r})")
    try:
        folds = [
            Fold(
                tuple(record["test_speakers"]),
                tuple(record["validation_speakers"]),
                tuple(record["train_speakers"]),
            )
            for record in document["folds"]
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed fold record ({exc})") from exc
    check_independent(folds)
    return folds


@dataclass(frozen=True)
class FoldSplit:
    """The utterances of one fold, by role."""

    train: list[Utterance]
    validation: list[Utterance]
    test: list[Utterance]


def split_by_fold(utterances: Iterable[Utterance], fold: Fold) -> FoldSplit:
    """Utterances of each role of ``fold`` (utterances of other speakers are left out)."""
    items = list(utterances)

    def of(speakers: tuple[str, ...]) -> list[Utterance]:
        keys = set(speakers)
        return [utterance for utterance in items if utterance.speaker_key in keys]

    return FoldSplit(of(fold.train_speakers), of(fold.validation_speakers), of(fold.test_speakers))
