"""Speaker-independent folds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.data import Utterance, load_emodb, load_ravdess
from toolkit.folds import (
    Fold,
    check_independent,
    default_folds,
    load_folds,
    make_folds,
    save_folds,
    speaker_genders,
    split_by_fold,
)


@pytest.fixture(scope="module")
def ravdess() -> list[Utterance]:
    return load_ravdess()


def _assert_tested_once(folds: list[Fold], speakers: set[str]) -> None:
    tested = Counter(key for fold in folds for key in fold.test_speakers)
    assert set(tested) == speakers and set(tested.values()) == {1}
    for fold in folds:
        roles = [set(fold.test_speakers), set(fold.validation_speakers), set(fold.train_speakers)]
        assert set.union(*roles) == speakers and sum(map(len, roles)) == len(speakers)


def test_ravdess_default_folds(ravdess: list[Utterance]) -> None:
    folds = default_folds(ravdess, seed=0)
    genders = speaker_genders(ravdess)
    assert len(folds) == 5
    _assert_tested_once(folds, set(genders))
    for fold in folds:
        assert Counter(genders[k] for k in fold.test_speakers) == {"male": 2, "female": 2}
        assert Counter(genders[k] for k in fold.validation_speakers) == {"male": 1, "female": 1}
        assert len(fold.train_speakers) == 14
    check_independent(folds)


def test_emodb_default_folds() -> None:
    emodb = load_emodb()
    folds = default_folds(emodb, seed=3)
    genders = speaker_genders(emodb)
    assert len(folds) == 4
    _assert_tested_once(folds, set(genders))
    for fold in folds:
        assert Counter(genders[k] for k in fold.test_speakers) == {"male": 1, "female": 1}
        assert len(fold.validation_speakers) == 2 and len(fold.train_speakers) == 4


def test_deterministic_for_a_seed(ravdess: list[Utterance]) -> None:
    assert make_folds(ravdess, 5, 7, 2) == make_folds(ravdess, 5, 7, 2)
    assert make_folds(ravdess, 5, 7, 2) != make_folds(ravdess, 5, 8, 2)


def test_split_by_fold_counts(ravdess: list[Utterance]) -> None:
    split = split_by_fold(ravdess, default_folds(ravdess)[0])
    assert (len(split.train), len(split.validation), len(split.test)) == (840, 120, 240)


def test_save_and_load_round_trip(ravdess: list[Utterance], tmp_path: Path) -> None:
    folds = default_folds(ravdess)
    path = tmp_path / "folds.json"
    save_folds(folds, path)
    assert json.loads(path.read_text())["format"] == "ser-folds/1"
    assert load_folds(path) == folds


def test_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "folds.json"
    path.write_text('{"folds": []}')
    with pytest.raises(ValueError, match="not a folds file"):
        load_folds(path)


def test_check_independent_catches_leaks() -> None:
    with pytest.raises(ValueError, match=r"fold 0: speakers \['c/b'\] hold more than one role"):
        check_independent([Fold(("c/a", "c/b"), (), ("c/b", "c/c"))])
    with pytest.raises(ValueError, match=r"fold 1: speakers \['c/a'\] are already tested"):
        check_independent([Fold(("c/a",), (), ("c/b",)), Fold(("c/a",), (), ("c/c",))])


def test_bad_settings(ravdess: list[Utterance]) -> None:
    with pytest.raises(ValueError, match=r"n_folds must be in \[2, 20\]"):
        make_folds(ravdess, 21, 0, 2)
    with pytest.raises(ValueError, match=r"validation_speakers_per_fold must be in \[0, 15\]"):
        make_folds(ravdess, 5, 0, 16)


@settings(max_examples=40, deadline=None)
@given(
    genders=st.lists(st.sampled_from(["female", "male", None]), min_size=2, max_size=30),
    data=st.data(),
)
def test_any_speaker_set_gives_independent_folds(
    genders: list[str | None], data: st.DataObject
) -> None:
    utterances = [
        Utterance(Path(f"{i}.wav"), "syn", f"{i:02d}", "sad", gender=g)
        for i, g in enumerate(genders)
    ]
    n_folds = data.draw(st.integers(2, len(genders)))
    folds = make_folds(
        utterances, n_folds, seed=data.draw(st.integers(0, 99)), validation_speakers_per_fold=0
    )
    check_independent(folds)
    _assert_tested_once(folds, {u.speaker_key for u in utterances})
    sizes = [len(fold.test_speakers) for fold in folds]
    assert max(sizes) - min(sizes) <= 1
    for gender in ("female", "male"):
        per_fold = [sum(genders[int(k[4:])] == gender for k in f.test_speakers) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1
