"""Speaker-independent evaluation of trained runs through ONNX Runtime (what the service runs).

``python -m toolkit evaluate --run-dir runs/default`` exports every trained run of the
directory to ONNX (fp32 and int8), predicts its validation and test speakers clean and with
white, pink and babble noise at 20/10/5/0 dB SNR, and writes ``results.json`` with: UA, WA,
macro-F1 and confusion per corpus (all labels of the corpus, and the 6 shared labels),
per-fold UA, cross-corpus figures, noise robustness, per-gender recall with TPR and
demographic-parity gaps, ECE before and after temperature scaling, the six LDL metrics
against the training-prior baseline, affect CCC and octant accuracy, abstention, int8 figures
and latency. Predictions of every test clip are pooled over folds: each speaker is tested
exactly once.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from service.audio.segment import SPEECH_PAD_S
from service.labels import AFFECT_DIMENSIONS, CANONICAL_LABELS
from toolkit.augment.noise import (
    NOISE_KINDS,
    add_noise,
    babble_noise,
    pink_noise,
    white_noise,
)
from toolkit.data.affect_norms import Affect, neutral_point
from toolkit.data.speech_crop import served_waveforms, silence_margin_s
from toolkit.export import (
    export_onnx,
    int8_method_of,
    predict_onnx,
    quantise_int8,
    run_onnx,
    session,
)
from toolkit.metrics import affect as affect_metrics
from toolkit.metrics import calibration, classification, ldl
from toolkit.train.config import DataConfig
from toolkit.train.dataset import ClipSet, octant_targets
from toolkit.train.experiment import (
    SAMPLING_RATE_HZ,
    corpus_labels,
    load_utterances,
    log,
    read_plan,
    read_recipe,
    recipe_clips,
    select,
)
from toolkit.train.loop import CHECKPOINT_FILE, load_checkpoint
from toolkit.train.plan import SHARED_LABELS, RunSpec
from toolkit.train.predict import restricted_argmax

SNRS_DB: tuple[float, ...] = (20.0, 10.0, 5.0, 0.0)
"""Evaluation noise conditions (the task's protocol)."""
PADDED_CONDITION = "padded"
PAD_S = 1.0
"""Silence added before and after each test clip in the ``padded`` condition: a recording
started a second early and stopped a second late, as users' recordings are."""
PAD_FLOOR_SNR_DB = 40.0
"""Pink noise this far below the padded clip's power covers it, so the added silence is a
quiet room rather than digital zero."""
ABSTAIN_QUANTILE = 0.9
"""Rule for the abstain threshold: the 90th percentile of the calibrated normalised predictive
entropy on the held-out speakers the temperature is fitted on (``[calibration]``), i.e. the
service abstains on about the 10 % least certain clips."""
ECE_BINS = 15
"""Guo et al. 2017."""
BATCH_SIZE = 16
CALIBRATION_CLIPS = 64
"""Training clips used to calibrate the int8 activation ranges."""
LATENCY_CLIP_S = 3.0
LATENCY_REPEATS = 50
VARIANTS: tuple[str, ...] = ("fp32", "int8")
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.npz"

Predictions = dict[str, np.ndarray]


@dataclass(frozen=True)
class RunData:
    """One run's clips by role (train is kept for the LDL prior)."""

    spec: RunSpec
    train: ClipSet
    validation: ClipSet
    test: ClipSet


# ----------------------------------------------------------------------------- prediction


def noisy_waveforms(clips: ClipSet, pool: ClipSet, kind: str, snr_db: float) -> list[np.ndarray]:
    """Test clips with ``kind`` noise at ``snr_db``; seeded per clip and condition.

    Babble mixes 4 clips of other speakers of the same corpus taken from ``pool``.
    """
    noisy = []
    for utterance, waveform in zip(clips.utterances, clips.waveforms, strict=True):
        seed = zlib.crc32(f"{utterance.path.name}|{kind}|{snr_db}".encode())
        rng = np.random.default_rng(seed)
        if kind == "white":
            noise = white_noise(waveform.size, rng)
        elif kind == "pink":
            noise = pink_noise(waveform.size, rng)
        else:
            others = [
                w
                for u, w in zip(pool.utterances, pool.waveforms, strict=True)
                if u.corpus == utterance.corpus and u.speaker_key != utterance.speaker_key
            ]
            noise = babble_noise(others, waveform.size, 4, rng)
        noisy.append(np.clip(add_noise(waveform, noise, snr_db), -1.0, 1.0))
    return noisy


def padded_waveforms(clips: ClipSet, sampling_rate_hz: int = SAMPLING_RATE_HZ) -> list[np.ndarray]:
    """Test clips with ``PAD_S`` of silence on both sides under a ``PAD_FLOOR_SNR_DB`` pink
    noise floor; seeded per clip. Measures how much a model's answer depends on the silence
    around the speech (a speech-cropping model should not care)."""
    pad = np.zeros(round(PAD_S * sampling_rate_hz), dtype=np.float32)
    padded = []
    for utterance, waveform in zip(clips.utterances, clips.waveforms, strict=True):
        rng = np.random.default_rng(zlib.crc32(f"{utterance.path.name}|padded".encode()))
        signal = np.concatenate([pad, waveform, pad])
        noise = pink_noise(signal.size, rng)
        padded.append(np.clip(add_noise(signal, noise, PAD_FLOOR_SNR_DB), -1.0, 1.0))
    return padded


def calibration_clips(
    train: ClipSet, seed: int = 0, crop_margin_s: float | None = None
) -> list[np.ndarray]:
    """``CALIBRATION_CLIPS`` random training clips (int8 calibration; never test speakers),
    as served (cropped with ``crop_margin_s`` unless ``None``)."""
    rng = np.random.default_rng(seed)
    count = min(CALIBRATION_CLIPS, len(train))
    chosen = [train.waveforms[int(i)] for i in rng.choice(len(train), count, replace=False)]
    return served_waveforms(chosen, SAMPLING_RATE_HZ, crop_margin_s)


def served_crop_margin_s(data: DataConfig, train: ClipSet) -> float | None:
    """Seconds of silence the run's served inputs keep around their speech: ``None`` (no
    crop), the service's padding for ``speech_crop`` recipes, or for
    ``serve_crop_to_training_silence`` the margin of the run's own training clips (never its
    validation or test speakers): their mean silence per side, or the recipe's
    ``serve_crop_silence_quantile`` of it."""
    if data.speech_crop:
        return SPEECH_PAD_S
    if data.serve_crop_to_training_silence:
        quantile = data.serve_crop_silence_quantile
        return round(silence_margin_s(train.waveforms, SAMPLING_RATE_HZ, quantile), 3)
    return None


def ensure_onnx(
    run_dir: Path, train: ClipSet, int8_method: str, crop_margin_s: float | None = None
) -> dict[str, Path]:
    """Export ``model.onnx`` and ``model.int8.onnx`` of a run if missing or stale.

    A graph is stale when older than the checkpoint; the int8 graph also when it was made
    with another method than ``int8_method`` (the recipe's). Cached predictions of a remade
    graph are dropped, the others kept.
    """
    checkpoint = run_dir / CHECKPOINT_FILE
    paths = {variant: run_dir / name for variant, name in MODEL_FILES.items()}
    stale = {
        variant
        for variant, path in paths.items()
        if not path.is_file() or path.stat().st_mtime < checkpoint.stat().st_mtime
    }
    if "fp32" in stale:
        model, _, _ = load_checkpoint(checkpoint)
        export_onnx(model, paths["fp32"])
        stale.add("int8")
    if "int8" not in stale and int8_method_of(paths["int8"]) != int8_method:
        stale.add("int8")
    if "int8" in stale:
        clips = (
            calibration_clips(train, crop_margin_s=crop_margin_s) if int8_method == "static" else []
        )
        quantise_int8(paths["fp32"], paths["int8"], clips, int8_method)
    drop_cached_predictions(run_dir / PREDICTIONS_FILE, stale)
    return paths


def drop_cached_predictions(cache: Path, variants: set[str]) -> None:
    """Remove the cached predictions of ``variants`` (keys ``<variant>/...``) from ``cache``."""
    if not variants or not cache.is_file():
        return
    stored = dict(np.load(cache))
    kept = {key: value for key, value in stored.items() if key.split("/")[0] not in variants}
    np.savez_compressed(cache, **kept)


def _noisy_job(
    run: RunData, pool: ClipSet, kind: str, snr_db: float
) -> Callable[[], list[np.ndarray]]:
    return lambda: noisy_waveforms(run.test, pool, kind, snr_db)


def run_predictions(
    run: RunData,
    model_paths: Mapping[str, Path],
    pool: ClipSet,
    noise: bool,
    cache: Path,
    crop_margin_s: float | None = None,
) -> dict[str, Predictions]:
    """Predictions keyed ``<variant>/<split>/<condition>``; cached in ``cache`` (npz).

    With a ``crop_margin_s`` each input (clean or with noise added to the whole recording) is
    cut to its detected speech with that margin first, as the service does for such a model.
    """
    stored: dict[str, np.ndarray] = dict(np.load(cache)) if cache.is_file() else {}
    results: dict[str, Predictions] = {}
    for variant, path in model_paths.items():
        jobs: list[tuple[str, Callable[[], list[np.ndarray]]]] = [
            (f"{variant}/validation/clean", lambda: run.validation.waveforms),
            (f"{variant}/test/clean", lambda: run.test.waveforms),
            (f"{variant}/test/{PADDED_CONDITION}", lambda: padded_waveforms(run.test)),
        ]
        if noise and len(run.test):
            for kind in NOISE_KINDS:
                for snr in SNRS_DB:
                    jobs.append(
                        (f"{variant}/test/{kind}_{snr:g}dB", _noisy_job(run, pool, kind, snr))
                    )
        for key, waveforms in jobs:
            if f"{key}|logits" not in stored and (key.find("/test/") < 0 or len(run.test)):
                inputs = served_waveforms(waveforms(), SAMPLING_RATE_HZ, crop_margin_s)
                for name, value in predict_onnx(path, inputs).items():
                    stored[f"{key}|{name}"] = value
            results[key] = {k.split("|")[1]: v for k, v in stored.items() if k.split("|")[0] == key}
    np.savez_compressed(cache, **stored)  # type: ignore[arg-type]
    return results


# ----------------------------------------------------------------------------- metrics


def label_indices(labels: Sequence[str]) -> np.ndarray:
    """Indices into ``CANONICAL_LABELS``."""
    return np.array([CANONICAL_LABELS.index(label) for label in labels], dtype=np.int64)


def classification_figures(
    true: np.ndarray, logits: np.ndarray, allowed: Sequence[str]
) -> dict[str, Any]:
    """UA, WA, macro-F1 and confusion of clips whose label is in ``allowed``, with the argmax
    restricted to ``allowed``; classes indexed in the order of ``allowed``."""
    keep = np.isin(true, label_indices(allowed))
    if not keep.any():
        return {}
    remap = {int(c): i for i, c in enumerate(label_indices(allowed))}
    y_true = np.array([remap[int(c)] for c in true[keep]])
    y_pred = np.array([remap[int(c)] for c in restricted_argmax(logits[keep], allowed)])
    n = len(allowed)
    return {
        "labels": list(allowed),
        "n_clips": int(keep.sum()),
        "ua": classification.unweighted_accuracy(y_true, y_pred, n),
        "wa": classification.weighted_accuracy(y_true, y_pred, n),
        "macro_f1": classification.macro_f1(y_true, y_pred, n),
        "recall": [
            None if np.isnan(r) else float(r)
            for r in classification.per_class_recall(y_true, y_pred, n)
        ],
        "confusion": classification.confusion_matrix(y_true, y_pred, n).tolist(),
    }


def fairness_figures(
    true: np.ndarray, logits: np.ndarray, genders: np.ndarray, allowed: Sequence[str]
) -> dict[str, Any]:
    """Per-gender UA / macro-F1 / recall, TPR gap and demographic-parity gap (max, mean)."""
    remap = {int(c): i for i, c in enumerate(label_indices(allowed))}
    keep = np.isin(true, label_indices(allowed)) & (genders != "None")
    y_true = np.array([remap[int(c)] for c in true[keep]])
    y_pred = np.array([remap[int(c)] for c in restricted_argmax(logits[keep], allowed)])
    groups, n = genders[keep], len(allowed)
    if len(set(groups.tolist())) < 2:
        return {}
    per_group = {
        str(g): {
            "ua": classification.unweighted_accuracy(y_true[groups == g], y_pred[groups == g], n),
            "macro_f1": classification.macro_f1(y_true[groups == g], y_pred[groups == g], n),
            "n_clips": int((groups == g).sum()),
        }
        for g in sorted(set(groups.tolist()))
    }
    tpr = classification.tpr_gap(y_true, y_pred, groups, n)
    parity = classification.demographic_parity_gap(y_pred, groups, n)
    return {
        "per_gender": per_group,
        "recall_by_gender": {
            g: [None if np.isnan(r) else float(r) for r in rec]
            for g, rec in classification.per_group_recall(y_true, y_pred, groups, n).items()
        },
        "tpr_gap_max": tpr.max_gap,
        "tpr_gap_mean": tpr.mean_gap,
        "demographic_parity_gap_max": parity.max_gap,
        "demographic_parity_gap_mean": parity.mean_gap,
    }


def fit_distribution_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising KL(target || softmax(logits / T)) on validation clips."""

    def mean_kl(log_t: float) -> float:
        log_probs = log_softmax(logits / np.exp(log_t), axis=1)
        return float(-(targets * log_probs).sum(axis=1).mean())

    low, high = np.log(calibration.TEMPERATURE_BOUNDS)
    result = minimize_scalar(mean_kl, bounds=(low, high), method="bounded")
    return float(np.exp(result.x))


def normalised_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Row-wise entropy divided by log(C) (the service's uncertainty measure), ``(N,)``."""
    safe = np.clip(probabilities, 1e-12, 1.0)
    entropy: np.ndarray = -(probabilities * np.log(safe)).sum(axis=1)
    normalised: np.ndarray = entropy / np.log(probabilities.shape[1])
    return normalised


VALIDATION_SPEAKERS = "validation speakers"
"""``RunCalibration.fitted_on`` of a fit on the run's own validation speakers."""


@dataclass(frozen=True)
class RunCalibration:
    """What a run's served model is calibrated with, and on which held-out speakers."""

    temperature: float
    distribution_temperature: float
    abstain_threshold: float
    fitted_on: str = VALIDATION_SPEAKERS


def fit_calibration(
    clips: Sequence[ClipSet], predictions: Sequence[Predictions], fitted_on: str
) -> RunCalibration:
    """Temperature (NLL), distribution temperature (KL to the soft labels) and abstain
    threshold (:data:`ABSTAIN_QUANTILE` of the calibrated entropy) on the pooled clips."""
    logits = np.concatenate([p["logits"] for p in predictions])
    labels = np.concatenate([c.labels for c in clips])
    temperature = calibration.fit_temperature(logits, labels)
    entropy = normalised_entropy(softmax(logits / temperature, axis=1))
    return RunCalibration(
        temperature=temperature,
        distribution_temperature=fit_distribution_temperature(
            np.concatenate([p["distribution_logits"] for p in predictions]),
            np.concatenate([c.soft for c in clips]),
        ),
        abstain_threshold=float(np.quantile(entropy, ABSTAIN_QUANTILE)),
        fitted_on=fitted_on,
    )


def fit_run_calibration(validation: ClipSet, predictions: Predictions) -> RunCalibration:
    """:func:`fit_calibration` on one run's validation speakers."""
    return fit_calibration([validation], [predictions], VALIDATION_SPEAKERS)


def out_of_fold_calibrations(
    folds: Sequence[str],
    others: Sequence[str],
    data: Mapping[str, RunData],
    per_run: Mapping[str, Mapping[str, Predictions]],
) -> dict[str, RunCalibration]:
    """Calibrations fitted on the folds' clean fp32 test predictions (``[calibration]
    speakers = "out_of_fold"``): each fold on the *other* folds' test speakers, every run of
    ``others`` (``final``, ``cross_*``) on all folds' test speakers. Needs two folds."""
    if len(folds) < 2:
        raise ValueError(f"out-of-fold calibration needs two folds or more, got {list(folds)}")

    def fit_on(names: Sequence[str]) -> RunCalibration:
        return fit_calibration(
            [data[n].test for n in names],
            [per_run[n]["fp32/test/clean"] for n in names],
            "test speakers of " + ", ".join(names),
        )

    calibrations = {fold: fit_on([f for f in folds if f != fold]) for fold in folds}
    if others:
        on_all_folds = fit_on(folds)
        calibrations |= {name: on_all_folds for name in others}
    return calibrations


def served_calibrations(
    speakers: str,
    folds: Sequence[str],
    data: Mapping[str, RunData],
    per_run: Mapping[str, Mapping[str, Predictions]],
    validation: Mapping[str, RunCalibration],
) -> dict[str, RunCalibration]:
    """The calibration every evaluated run is measured and shipped with: ``[calibration]
    speakers`` of the recipe; the validation fit when fewer than two folds were evaluated."""
    if speakers == "validation" or len(folds) < 2:
        return dict(validation)
    others = [name for name in validation if name not in folds]
    return out_of_fold_calibrations(folds, others, data, per_run)


@dataclass
class Pooled:
    """Test predictions of several runs concatenated (each speaker once)."""

    clips: list[ClipSet]
    predictions: list[Predictions]
    calibrations: list[RunCalibration]
    priors: list[dict[str, np.ndarray]]
    fold_names: list[str]

    def concat(self, name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in self.predictions])

    def per_clip(self, attribute: Callable[[ClipSet], np.ndarray]) -> np.ndarray:
        return np.concatenate([attribute(c) for c in self.clips])

    def per_fold(self, values: Sequence[float]) -> np.ndarray:
        """``(N,)``: each test clip gets the value of its fold (``values`` has one per fold)."""
        return np.concatenate(
            [np.full(len(c), value) for c, value in zip(self.clips, values, strict=True)]
        )

    def temperatures(self, field: str) -> np.ndarray:
        """Per clip, the temperature its run fitted."""
        return self.per_fold([getattr(cal, field) for cal in self.calibrations])


def corpus_of(clips: ClipSet) -> np.ndarray:
    return np.array([u.corpus for u in clips.utterances])


def gender_of(clips: ClipSet) -> np.ndarray:
    return np.array([str(u.gender) for u in clips.utterances])


def in_corpus_figures(
    pooled: Pooled, labels_by_corpus: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Per corpus: all labels, 6 shared labels, per-fold UA, fairness."""
    corpora, true = pooled.per_clip(corpus_of), pooled.per_clip(lambda c: c.labels)
    genders, logits = pooled.per_clip(gender_of), pooled.concat("logits")
    folds = np.concatenate([np.full(len(c), i) for i, c in enumerate(pooled.clips)])
    figures: dict[str, Any] = {}
    for corpus, allowed in labels_by_corpus.items():
        members = corpora == corpus
        if not members.any():
            continue
        per_fold = [
            classification_figures(
                true[members & (folds == f)], logits[members & (folds == f)], allowed
            )
            for f in range(len(pooled.clips))
            if (members & (folds == f)).any()
        ]
        figures[corpus] = {
            "all_labels": classification_figures(true[members], logits[members], allowed),
            "shared_labels": classification_figures(true[members], logits[members], SHARED_LABELS),
            "per_fold_ua": [f["ua"] for f in per_fold],
            "fairness": fairness_figures(true[members], logits[members], genders[members], allowed),
        }
    return figures


def scaled_figures(pooled: Pooled) -> dict[str, Any]:
    """ECE and NLL of the 9-way softmax after each fold's temperature in ``pooled``."""
    logits, true = pooled.concat("logits"), pooled.per_clip(lambda c: c.labels)
    scaled = logits / pooled.temperatures("temperature")[:, None]
    return {
        "ece_after": calibration.expected_calibration_error(
            softmax(scaled, axis=1), true, ECE_BINS
        ),
        "nll_after": calibration.nll(scaled, true),
        "temperatures": [c.temperature for c in pooled.calibrations],
        "fitted_on": [c.fitted_on for c in pooled.calibrations],
    }


def calibration_figures(pooled: Pooled, alternative: Pooled | None = None) -> dict[str, Any]:
    """ECE and NLL before and after the temperatures of ``pooled`` (the served ones), and
    after those of ``alternative`` (the same predictions calibrated otherwise), if given."""
    logits, true = pooled.concat("logits"), pooled.per_clip(lambda c: c.labels)
    figures = {
        "ece_before": calibration.expected_calibration_error(
            softmax(logits, axis=1), true, ECE_BINS
        ),
        "nll_before": calibration.nll(logits, true),
        **scaled_figures(pooled),
        "bins": ECE_BINS,
    }
    if alternative is not None:
        figures["alternative"] = scaled_figures(alternative)
    return figures


def uncertainty_figures(
    pooled: Pooled, labels_by_corpus: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Abstention rate and accuracy of kept vs all clips with each run's threshold."""
    logits, true = pooled.concat("logits"), pooled.per_clip(lambda c: c.labels)
    corpora = pooled.per_clip(corpus_of)
    probabilities = softmax(logits / pooled.temperatures("temperature")[:, None], axis=1)
    abstain = normalised_entropy(probabilities) > pooled.temperatures("abstain_threshold")
    predicted = np.concatenate(
        [restricted_argmax(logits[i : i + 1], labels_by_corpus[c]) for i, c in enumerate(corpora)]
    )
    correct = predicted == true
    return {
        "rule": (
            f"threshold = {ABSTAIN_QUANTILE:.0%} quantile of the calibrated normalised entropy "
            "on the held-out speakers the temperature was fitted on"
        ),
        "thresholds": [c.abstain_threshold for c in pooled.calibrations],
        "abstention_rate": float(abstain.mean()),
        "accuracy_all": float(correct.mean()),
        "accuracy_kept": float(correct[~abstain].mean()) if (~abstain).any() else None,
        "accuracy_abstained": float(correct[abstain].mean()) if abstain.any() else None,
    }


def restrict_distribution(probabilities: np.ndarray, allowed: Sequence[str]) -> np.ndarray:
    """Rows of ``(N, 9)`` probabilities with labels outside ``allowed`` set to 0, renormalised."""
    mask = np.isin(np.arange(len(CANONICAL_LABELS)), label_indices(allowed))
    kept = probabilities * mask[None, :]
    restricted: np.ndarray = kept / kept.sum(axis=1, keepdims=True)
    return restricted


def ldl_figures(pooled: Pooled, labels_by_corpus: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Six LDL metrics of the distribution head vs the rater soft labels, and the prior
    baseline (mean training soft label of the same corpus in the same run), per corpus.

    ``model`` restricts the predicted distribution to the corpus's labels (renormalised), as
    the argmax is restricted; ``model_all_labels`` keeps all 9. Clark and Canberra count a
    full unit for every label whose target is 0 and whose prediction is not, however small,
    so the 9-way distribution loses to a prior that is exactly 0 outside the corpus.
    """
    corpora = pooled.per_clip(corpus_of)
    soft = pooled.per_clip(lambda c: c.soft)
    scaled = (
        pooled.concat("distribution_logits")
        / pooled.temperatures("distribution_temperature")[:, None]
    )
    predicted = softmax(scaled, axis=1)
    prior = np.concatenate(
        [
            np.stack([run_prior[u.corpus] for u in c.utterances])
            for c, run_prior in zip(pooled.clips, pooled.priors, strict=True)
        ]
    )
    figures = {}
    for corpus in sorted(set(corpora.tolist())):
        m = corpora == corpus
        restricted = restrict_distribution(predicted[m], labels_by_corpus[corpus])
        figures[corpus] = {
            "model": ldl.ldl_scores(soft[m], restricted).as_dict(),
            "model_all_labels": ldl.ldl_scores(soft[m], predicted[m]).as_dict(),
            "prior_baseline": ldl.ldl_scores(soft[m], prior[m]).as_dict(),
        }
    return figures


def affect_figures(pooled: Pooled, neutral: Affect) -> dict[str, Any]:
    """CCC per dimension and octant accuracy (clips whose target is not the neutral point)."""
    true = pooled.per_clip(lambda c: c.affect)
    predicted = pooled.concat("vad")
    ccc = affect_metrics.concordance_correlation(predicted, true)
    has_octant = octant_targets(true, neutral) >= 0
    octant_logit_index = pooled.concat("octant_logits").argmax(axis=1)
    true_octant = octant_targets(true, neutral)
    return {
        "ccc": dict(zip(AFFECT_DIMENSIONS, map(float, ccc), strict=True)),
        "ccc_mean": float(np.mean(ccc)),
        "octant_accuracy_from_vad": affect_metrics.octant_accuracy(
            predicted[has_octant], true[has_octant], neutral
        ),
        "octant_accuracy_from_head": float(
            np.mean(octant_logit_index[has_octant] == true_octant[has_octant])
        ),
        "n_clips_with_octant": int(has_octant.sum()),
        "targets": (
            "derived from labels and intensity via toolkit/data/affect_norms.csv (NRC VAD v1.0)"
        ),
    }


def noise_figures(
    pooled_by_condition: Mapping[str, Pooled], labels_by_corpus: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Per condition and corpus: UA over the corpus's labels."""
    figures: dict[str, Any] = {}
    for condition, pooled in pooled_by_condition.items():
        corpora, true = pooled.per_clip(corpus_of), pooled.per_clip(lambda c: c.labels)
        logits = pooled.concat("logits")
        figures[condition] = {
            corpus: classification_figures(
                true[corpora == corpus], logits[corpora == corpus], allowed
            )["ua"]
            for corpus, allowed in labels_by_corpus.items()
            if (corpora == corpus).any()
        }
    return figures


def latency_ms(model_path: Path) -> dict[str, float]:
    """Median and minimum ms per 3 s clip, batch 1, one thread (ONNX Runtime).

    The machine is shared, so the median includes other jobs' load; the minimum is the
    closest to the cost on an idle core.
    """
    sess = session(model_path, threads=1)
    samples = int(LATENCY_CLIP_S * SAMPLING_RATE_HZ)
    waveform = (0.1 * np.random.default_rng(0).standard_normal((1, samples))).astype(np.float32)
    lengths = np.array([samples], dtype=np.int64)
    for _ in range(5):
        run_onnx(sess, waveform, lengths)
    timings = []
    for _ in range(LATENCY_REPEATS):
        start = time.perf_counter()
        run_onnx(sess, waveform, lengths)
        timings.append((time.perf_counter() - start) * 1000.0)
    return {"median": float(np.median(timings)), "min": float(np.min(timings))}


# ----------------------------------------------------------------------------- driver


def training_priors(train: ClipSet) -> dict[str, np.ndarray]:
    """Corpus -> mean training soft label of that corpus (LDL prior baseline)."""
    corpora = corpus_of(train)
    return {c: ldl.prior_baseline(train.soft[corpora == c]) for c in sorted(set(corpora.tolist()))}


def evaluate(
    run_dir: Path, names: Sequence[str] | None = None, noise: bool = True
) -> dict[str, Any]:
    """Evaluate the trained runs of ``run_dir``; write and return ``results.json``'s content."""
    config = read_recipe(run_dir)
    plan = read_plan(run_dir)
    trained = [n for n in plan if (run_dir / n / CHECKPOINT_FILE).is_file()]
    chosen = [n for n in trained if names is None or n in names]
    utterances = load_utterances(config.data.corpora)
    neutral = neutral_point()
    clips = recipe_clips(config, utterances, neutral, speech_crop=False)  # cropped when served
    labels_by_corpus = corpus_labels(utterances)
    per_run: dict[str, dict[str, Predictions]] = {}
    data: dict[str, RunData] = {}
    validation: dict[str, RunCalibration] = {}
    margins_s: dict[str, float | None] = {}
    for name in chosen:
        spec = plan[name]
        log(f"evaluating {name}")
        data[name] = RunData(
            spec,
            select(clips, spec.train_speakers),
            select(clips, spec.validation_speakers),
            select(clips, spec.test_speakers),
        )
        margins_s[name] = served_crop_margin_s(config.data, data[name].train)
        paths = ensure_onnx(
            run_dir / name, data[name].train, config.export.int8_method, margins_s[name]
        )
        with_noise = noise and name.startswith("fold")  # noise figures come from the folds
        per_run[name] = run_predictions(
            data[name],
            paths,
            clips,
            with_noise,
            run_dir / name / PREDICTIONS_FILE,
            margins_s[name],
        )
        validation[name] = fit_run_calibration(
            data[name].validation, per_run[name]["fp32/validation/clean"]
        )
    folds = [n for n in chosen if n.startswith("fold")]
    calibrations = served_calibrations(
        config.calibration.speakers, folds, data, per_run, validation
    )
    out_of_fold = any(c.fitted_on != VALIDATION_SPEAKERS for c in calibrations.values())
    results: dict[str, Any] = {
        "protocol": protocol_text(
            folds, [n for n in plan if n.startswith("fold")], out_of_fold=out_of_fold
        ),
        "runs_evaluated": chosen,
        "labels_by_corpus": labels_by_corpus,
        "calibration_per_run": {n: vars(c) for n, c in calibrations.items()},
        "crop_margin_s_per_run": margins_s,
    }
    if out_of_fold:
        results["validation_calibration_per_run"] = {n: vars(c) for n, c in validation.items()}
    for variant in VARIANTS:
        block: dict[str, Any] = {}
        if folds:
            pooled = pool(folds, data, per_run, calibrations, variant, "clean")
            block["in_corpus"] = in_corpus_figures(pooled, labels_by_corpus)
            block["calibration"] = calibration_figures(
                pooled,
                replace(pooled, calibrations=[validation[n] for n in folds])
                if out_of_fold
                else None,
            )
            block["uncertainty"] = uncertainty_figures(pooled, labels_by_corpus)
            block["ldl"] = ldl_figures(pooled, labels_by_corpus)
            block["affect"] = affect_figures(pooled, neutral)
            if noise:
                conditions = {
                    f"{k}_{s:g}dB": pool(
                        folds, data, per_run, calibrations, variant, f"{k}_{s:g}dB"
                    )
                    for k in NOISE_KINDS
                    for s in SNRS_DB
                }
                block["noise_ua"] = {
                    "clean": noise_figures({"clean": pooled}, labels_by_corpus)["clean"],
                    **noise_figures(conditions, labels_by_corpus),
                }
            padded = pool(folds, data, per_run, calibrations, variant, PADDED_CONDITION)
            block["padded_ua"] = noise_figures({PADDED_CONDITION: padded}, labels_by_corpus)[
                PADDED_CONDITION
            ]
        block["cross_corpus"] = cross_corpus_figures(chosen, data, per_run, calibrations, variant)
        reference = run_dir / (folds[0] if folds else chosen[0]) / MODEL_FILES[variant]
        block["latency_ms_per_3s_clip_1_thread"] = latency_ms(reference)
        block["model_file_bytes"] = reference.stat().st_size
        results[variant] = block
    (run_dir / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n")
    return results


def protocol_text(
    folds: Sequence[str], planned_folds: Sequence[str], out_of_fold: bool = False
) -> str:
    """The evaluation protocol in one sentence; says so when only some folds were evaluated
    and on which speakers the temperatures and abstain threshold were fitted."""
    if list(folds) == list(planned_folds):
        pooled = "test predictions pooled over folds, each speaker tested once"
    else:
        pooled = (
            f"test predictions pooled over {len(folds)} of the {len(planned_folds)} folds "
            f"({', '.join(folds)}): only their test speakers are tested, each once"
        )
    if out_of_fold:
        fitted = (
            "fitted out of fold: each fold's on the other folds' test speakers (its own test "
            "speakers never enter it), the shipped run's on all folds' test speakers"
        )
    else:
        fitted = "fitted on each fold's validation speakers"
    return (
        "speaker-independent: RAVDESS 5 folds of 4 actors, EmoDB 4 folds of 2 speakers "
        f"(folds.json); {pooled}; temperature, distribution temperature and abstain threshold "
        f"{fitted}; argmax restricted to the labels of the clip's corpus"
    )


def pool(
    names: Sequence[str],
    data: Mapping[str, RunData],
    per_run: Mapping[str, Mapping[str, Predictions]],
    calibrations: Mapping[str, RunCalibration],
    variant: str,
    condition: str,
) -> Pooled:
    """Concatenate the test predictions of ``names`` under one variant and condition."""
    return Pooled(
        clips=[data[n].test for n in names],
        predictions=[dict(per_run[n][f"{variant}/test/{condition}"]) for n in names],
        calibrations=[calibrations[n] for n in names],
        priors=[training_priors(data[n].train) for n in names],
        fold_names=list(names),
    )


def cross_corpus_figures(
    chosen: Sequence[str],
    data: Mapping[str, RunData],
    per_run: Mapping[str, Mapping[str, Predictions]],
    calibrations: Mapping[str, RunCalibration],
    variant: str,
) -> dict[str, Any]:
    """Train on one corpus, test on every speaker of the other, 6 shared labels."""

    def shared_label_figures(name: str, condition: str) -> dict[str, Any]:
        pooled = pool([name], data, per_run, calibrations, variant, condition)
        return classification_figures(
            pooled.per_clip(lambda c: c.labels), pooled.concat("logits"), SHARED_LABELS
        )

    return {
        name.removeprefix("cross_"): {
            **shared_label_figures(name, "clean"),
            "ua_padded": shared_label_figures(name, PADDED_CONDITION)["ua"],
        }
        for name in chosen
        if name.startswith("cross_")
    }
