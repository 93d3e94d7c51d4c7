"""Which speakers each training run uses: k-fold, cross-corpus and the final model.

Per corpus, :func:`toolkit.folds.make_folds` deals speakers into folds (RAVDESS 5 folds of 4
actors, EmoDB 4 folds of 2 speakers). Combined fold ``i`` tests RAVDESS fold ``i`` and EmoDB
fold ``i``; a corpus with fewer folds (EmoDB has no fold 4) contributes only training and
validation speakers to the extra folds, so every speaker is still tested exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.data.types import Utterance
from toolkit.folds import Fold, make_folds
from toolkit.train.config import FoldConfig

SHARED_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust")
"""Labels RAVDESS and EmoDB share (cross-corpus and 6-class figures)."""


@dataclass(frozen=True)
class RunSpec:
    """One training run: its name and the speaker keys in each role."""

    name: str
    train_speakers: tuple[str, ...]
    validation_speakers: tuple[str, ...]
    test_speakers: tuple[str, ...]


def corpus_folds(utterances: Sequence[Utterance], config: FoldConfig) -> dict[str, list[Fold]]:
    """Folds of every corpus present in ``utterances``, keyed by corpus name."""
    folds: dict[str, list[Fold]] = {}
    for corpus in sorted({u.corpus for u in utterances}):
        members = [u for u in utterances if u.corpus == corpus]
        folds[corpus] = make_folds(
            members,
            config.n_folds[corpus],
            config.seed,
            config.validation_speakers[corpus],
        )
    return folds


def combined_folds(per_corpus: dict[str, list[Fold]]) -> list[Fold]:
    """Fold ``i`` joins fold ``i`` of every corpus (see the module docstring)."""
    count = max(len(folds) for folds in per_corpus.values())
    combined = []
    for index in range(count):
        test: list[str] = []
        validation: list[str] = []
        train: list[str] = []
        for folds in per_corpus.values():
            if index < len(folds):
                fold = folds[index]
                test += fold.test_speakers
            else:
                fold = _without_test(folds[index % len(folds)])
            validation += fold.validation_speakers
            train += fold.train_speakers
        combined.append(Fold(tuple(sorted(test)), tuple(sorted(validation)), tuple(sorted(train))))
    return combined


def _without_test(fold: Fold) -> Fold:
    """The fold with its test speakers moved to training."""
    train = tuple(sorted(fold.train_speakers + fold.test_speakers))
    return Fold((), fold.validation_speakers, train)


def fold_runs(folds: Sequence[Fold]) -> list[RunSpec]:
    """``fold0``, ``fold1``, ... from combined folds."""
    return [
        RunSpec(f"fold{i}", f.train_speakers, f.validation_speakers, f.test_speakers)
        for i, f in enumerate(folds)
    ]


def final_run(per_corpus: dict[str, list[Fold]]) -> RunSpec:
    """The shipped model: every speaker trains except fold 0's validation speakers."""
    validation = tuple(
        sorted(k for folds in per_corpus.values() for k in folds[0].validation_speakers)
    )
    everyone = {k for folds in per_corpus.values() for k in _speakers(folds[0])}
    return RunSpec("final", tuple(sorted(everyone - set(validation))), validation, ())


def cross_runs(per_corpus: dict[str, list[Fold]]) -> list[RunSpec]:
    """Train on one corpus (fold 0's validation speakers held for validation), test on
    every speaker of the other: ``cross_ravdess_to_emodb`` and the reverse."""
    runs = []
    for source, target in (("ravdess", "emodb"), ("emodb", "ravdess")):
        if source in per_corpus and target in per_corpus:
            fold = per_corpus[source][0]
            validation = fold.validation_speakers
            train = tuple(sorted(_speakers(fold) - set(validation)))
            test = tuple(sorted(_speakers(per_corpus[target][0])))
            runs.append(RunSpec(f"cross_{source}_to_{target}", train, validation, test))
    return runs


def _speakers(fold: Fold) -> set[str]:
    return set(fold.test_speakers + fold.validation_speakers + fold.train_speakers)


def all_runs(utterances: Sequence[Utterance], config: FoldConfig) -> dict[str, RunSpec]:
    """Every run of the protocol by name: folds, ``final`` and the cross-corpus runs."""
    per_corpus = corpus_folds(utterances, config)
    runs = [*fold_runs(combined_folds(per_corpus)), final_run(per_corpus), *cross_runs(per_corpus)]
    return {run.name: run for run in runs}
