"""Evaluation helpers and the model card renderer (pure functions, small arrays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from service.labels import CANONICAL_LABELS
from toolkit.card import alternative_calibration_lines, shipped_calibration_source, target_rows
from toolkit.data.types import Utterance
from toolkit.evaluate import (
    Pooled,
    RunCalibration,
    RunData,
    calibration_figures,
    classification_figures,
    drop_cached_predictions,
    fit_distribution_temperature,
    fit_run_calibration,
    normalised_entropy,
    protocol_text,
    served_calibrations,
)
from toolkit.train.dataset import ClipSet
from toolkit.train.plan import RunSpec
from toolkit.train.predict import restricted_argmax


def _index(label: str) -> int:
    return CANONICAL_LABELS.index(label)


def test_restricted_argmax_never_picks_a_label_outside_the_corpus() -> None:
    logits = np.zeros((1, 9))
    logits[0, _index("bored")] = 10.0
    logits[0, _index("sad")] = 1.0
    assert restricted_argmax(logits, ["neutral", "sad", "calm"]).tolist() == [_index("sad")]


def test_classification_figures_use_only_allowed_labels() -> None:
    true = np.array([_index("sad"), _index("sad"), _index("calm"), _index("angry")])
    logits = np.zeros((4, 9))
    logits[0, _index("sad")] = 1
    logits[1, _index("calm")] = 1
    logits[2, _index("calm")] = 1
    logits[3, _index("angry")] = 1
    figures = classification_figures(true, logits, ["sad", "angry"])
    assert figures["n_clips"] == 3  # the calm clip is not in the label set
    # clip 1 predicts calm, outside the set: the restricted argmax picks sad or angry (tie -> sad)
    assert figures["ua"] == pytest.approx(1.0)
    assert figures["confusion"] == [[2, 0], [0, 1]]


def test_normalised_entropy_bounds() -> None:
    uniform = np.full((1, 9), 1 / 9)
    certain = np.eye(9)[:1]
    assert normalised_entropy(uniform)[0] == pytest.approx(1.0)
    assert normalised_entropy(certain)[0] == pytest.approx(0.0, abs=1e-9)


def test_distribution_temperature_recovers_the_scaling() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 9)) * 3
    targets = softmax(logits / 2.0, axis=1)
    assert fit_distribution_temperature(logits, targets) == pytest.approx(2.0, rel=1e-3)


def test_target_rows_mark_missed_and_met() -> None:
    metrics = {"ravdess_ua_8class": 0.61, "emodb_ua_7class": 0.5, "ece_after_temperature": 0.04}
    block = {
        "noise_ua": {"clean": {"ravdess": 0.6}, "white_10dB": {"ravdess": 0.45}},
        "ldl": {
            "emodb": {
                "model": {
                    "chebyshev": 0.1,
                    "clark": 1,
                    "canberra": 1,
                    "kl": 0.1,
                    "cosine": 0.9,
                    "intersection": 0.9,
                },
                "prior_baseline": {
                    "chebyshev": 0.2,
                    "clark": 2,
                    "canberra": 2,
                    "kl": 0.2,
                    "cosine": 0.5,
                    "intersection": 0.5,
                },
            }
        },
    }
    rows = {row[0]: row for row in target_rows(metrics, block)}
    assert rows["RAVDESS 8-class UA"][3] == "met"
    assert rows["EmoDB 7-class UA"][3] == "**missed**"
    assert rows["ECE after temperature scaling"][3] == "met"
    assert rows["ravdess UA drop at 10 dB white noise"][1] == "15.0 points"
    assert rows["ravdess UA drop at 10 dB white noise"][3] == "**missed**"
    assert rows["emodb LDL metrics better than the training prior"][1] == "6 of 6"
    assert rows["RAVDESS 6 shared classes UA"][1] == "not measured"


def test_the_protocol_says_when_only_some_folds_were_evaluated() -> None:
    planned = ["fold0", "fold1", "fold2", "fold3", "fold4"]
    assert "each speaker tested once" in protocol_text(planned, planned)
    partial = protocol_text(["fold1", "fold3"], planned)
    assert "pooled over 2 of the 5 folds (fold1, fold3): only their test speakers" in partial
    assert "fitted on each fold's validation speakers" in partial
    out_of_fold = protocol_text(planned, planned, out_of_fold=True)
    assert "fitted out of fold: each fold's on the other folds' test speakers" in out_of_fold


def test_the_card_states_the_calibration_it_did_not_ship() -> None:
    alternative = {"temperatures": [0.74, 1.57], "ece_after": 0.0533, "nll_after": 1.2434}
    lines = alternative_calibration_lines({"alternative": alternative})
    assert lines[1] == (
        "Measured, not shipped: each fold's temperature fitted on its own validation speakers "
        "(temperatures 0.74, 1.57) gives ECE 0.053 and NLL 1.243 nats."
    )
    older = {"cross_fitted_temperatures": [1.1], "ece_after_cross_fitted": 0.032}
    assert (
        "(cross-fitted; temperatures 1.10) gives ECE 0.032 and NLL 1.000"
        in (alternative_calibration_lines({**older, "nll_after_cross_fitted": 1.0})[1])
    )
    assert alternative_calibration_lines({"ece_after": 0.04}) == []


def test_the_card_names_where_the_shipped_calibration_was_fitted() -> None:
    old = {"calibration_per_run": {"final": {"temperature": 1.2}}}
    assert shipped_calibration_source(old, "final") == "on its validation speakers"
    new = {"calibration_per_run": {"final": {"fitted_on": "test speakers of fold0, fold1"}}}
    assert shipped_calibration_source(new, "final").startswith(
        "out of fold, on the test speakers of fold0, fold1"
    )


def test_dropping_cached_predictions_keeps_the_other_variant(tmp_path: Path) -> None:
    cache = tmp_path / "predictions.npz"
    arrays = {"fp32/test/clean|logits": np.ones(2), "int8/test/clean|logits": np.zeros(2)}
    np.savez_compressed(cache, **arrays)  # type: ignore[arg-type]
    drop_cached_predictions(cache, {"int8"})
    assert list(np.load(cache)) == ["fp32/test/clean|logits"]
    drop_cached_predictions(tmp_path / "missing.npz", {"int8"})  # nothing cached: no error


def synthetic_fold(
    rng: np.random.Generator, clips: int, temperature: float
) -> tuple[ClipSet, dict[str, np.ndarray]]:
    """Clips whose labels are drawn from ``softmax(logits / temperature)``."""
    logits = 3.0 * rng.standard_normal((clips, len(CANONICAL_LABELS)))
    probabilities = softmax(logits / temperature, axis=1)
    labels = np.array([rng.choice(len(CANONICAL_LABELS), p=row) for row in probabilities])
    acted = np.eye(len(CANONICAL_LABELS))[labels]
    utterances = [
        Utterance(Path(f"{i}.flac"), "ravdess", "01", CANONICAL_LABELS[label])
        for i, label in enumerate(labels)
    ]
    fold = ClipSet(utterances, [], acted, acted, np.zeros((clips, 3)))
    return fold, {"logits": logits, "distribution_logits": logits}


def synthetic_runs(
    temperatures: dict[str, float], clips: int, seed: int
) -> tuple[dict[str, RunData], dict[str, dict[str, dict[str, np.ndarray]]]]:
    """Runs named by ``temperatures``: each run's test and validation clips are drawn with
    its temperature (``clips`` test clips, 60 validation clips)."""
    rng = np.random.default_rng(seed)
    data, per_run = {}, {}
    for name, temperature in temperatures.items():
        test, test_predictions = synthetic_fold(rng, clips, temperature)
        validation, validation_predictions = synthetic_fold(rng, 60, temperature)
        data[name] = RunData(RunSpec(name, (), (), ()), test, validation, test)
        per_run[name] = {
            "fp32/test/clean": test_predictions,
            "fp32/validation/clean": validation_predictions,
        }
    return data, per_run


def validation_fits(
    data: dict[str, RunData], per_run: dict[str, dict[str, dict[str, np.ndarray]]]
) -> dict[str, RunCalibration]:
    return {
        name: fit_run_calibration(run.validation, per_run[name]["fp32/validation/clean"])
        for name, run in data.items()
    }


def test_an_out_of_fold_temperature_never_sees_its_own_fold() -> None:
    # Folds 0 and 1 are 2x overconfident; fold 2 and the final run are calibrated.
    data, per_run = synthetic_runs(
        {"fold0": 2.0, "fold1": 2.0, "fold2": 1.0, "final": 1.0}, 4000, 0
    )
    folds = ["fold0", "fold1", "fold2"]
    served = served_calibrations(
        "out_of_fold", folds, data, per_run, validation_fits(data, per_run)
    )
    # Fold 2's temperature sees only the overconfident folds, fold 0's a mix of both.
    assert served["fold2"].temperature == pytest.approx(2.0, rel=0.08)
    assert 1.1 < served["fold0"].temperature < 1.9
    assert served["fold0"].temperature == pytest.approx(served["fold1"].temperature, rel=0.02)
    assert served["fold2"].fitted_on == "test speakers of fold0, fold1"
    # The final run (no test speakers) gets the fit on every fold, never its own clips.
    assert served["final"].fitted_on == "test speakers of fold0, fold1, fold2"
    assert served["fold0"].temperature < served["final"].temperature < served["fold2"].temperature
    assert 0 < served["final"].abstain_threshold < 1


def test_validation_calibration_is_chosen_or_the_fallback_below_two_folds() -> None:
    data, per_run = synthetic_runs({"fold0": 2.0, "final": 2.0}, 300, 1)
    validation = validation_fits(data, per_run)
    assert served_calibrations("out_of_fold", ["fold0"], data, per_run, validation) == validation
    data, per_run = synthetic_runs({"fold0": 2.0, "fold1": 2.0}, 300, 2)
    validation = validation_fits(data, per_run)
    chosen = served_calibrations("validation", ["fold0", "fold1"], data, per_run, validation)
    assert chosen == validation
    assert {c.fitted_on for c in chosen.values()} == {"validation speakers"}


def pooled_folds(
    folds: list[tuple[ClipSet, dict[str, np.ndarray]]], temperature: float = 1.0
) -> Pooled:
    return Pooled(
        clips=[clips for clips, _ in folds],
        predictions=[predictions for _, predictions in folds],
        calibrations=[RunCalibration(temperature, 1.0, 0.5) for _ in folds],
        priors=[{} for _ in folds],
        fold_names=[f"fold{i}" for i in range(len(folds))],
    )


def test_calibration_figures_report_the_alternative_beside_the_served_one() -> None:
    rng = np.random.default_rng(3)
    folds = [synthetic_fold(rng, 3000, 2.0) for _ in "ab"]
    assert "alternative" not in calibration_figures(pooled_folds(folds, 2.0))
    figures = calibration_figures(pooled_folds(folds, 2.0), pooled_folds(folds, 0.8))
    assert figures["ece_after"] < figures["ece_before"]
    assert figures["ece_after"] < figures["alternative"]["ece_after"]
    assert figures["nll_after"] < figures["alternative"]["nll_after"]
    assert figures["alternative"]["temperatures"] == [0.8, 0.8]
