"""Run the training protocol: load corpora, plan folds, train the selected runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from scipy.special import softmax

from toolkit.data.affect_norms import Affect, neutral_point
from toolkit.data.registry import load_corpus
from toolkit.data.types import Utterance
from toolkit.export import export_onnx, predict_onnx
from toolkit.folds import save_folds
from toolkit.model.ser_model import SerModel, build_model
from toolkit.numerics import ENVIRONMENT_FILE, training_environment
from toolkit.train.config import TrainConfig, parse_config
from toolkit.train.dataset import ClipSet, load_clips
from toolkit.train.frozen import FrozenFeatureFeeder
from toolkit.train.loop import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    load_checkpoint,
    seed_everything,
    train_run,
)
from toolkit.train.plan import RunSpec, all_runs, combined_folds, corpus_folds

SAMPLING_RATE_HZ = 16_000
FOLDS_FILE = "folds.json"
PLAN_FILE = "plan.json"
CONFIG_FILE = "config.json"


def log(message: str) -> None:
    """Print a progress line and flush (training runs under nohup)."""
    print(message, flush=True)


def load_utterances(corpora: Sequence[str]) -> list[Utterance]:
    """Utterances of every named corpus (built-in name or CSV manifest path)."""
    return [u for corpus in corpora for u in load_corpus(corpus)]


def corpus_labels(utterances: Sequence[Utterance]) -> dict[str, list[str]]:
    """Corpus -> the canonical labels it uses, in canonical order."""
    from service.labels import CANONICAL_LABELS

    present: dict[str, set[str]] = {}
    for u in utterances:
        present.setdefault(u.corpus, set()).add(u.label)
    return {c: [lab for lab in CANONICAL_LABELS if lab in s] for c, s in sorted(present.items())}


def recipe_clips(
    config: TrainConfig,
    utterances: Sequence[Utterance],
    neutral: Affect,
    *,
    speech_crop: bool | None = None,
) -> ClipSet:
    """``utterances`` decoded, cropped to their speech when the recipe says
    (``data.speech_crop``; ``speech_crop`` overrides it) and cut to the recipe's
    ``data.max_duration_s``, in order (what training and reproduction see; evaluation loads
    them uncropped and crops after adding noise, as the service would)."""
    max_samples = int(config.data.max_duration_s * SAMPLING_RATE_HZ)
    crop = config.data.speech_crop if speech_crop is None else speech_crop
    return load_clips(utterances, max_samples, neutral, crop)


def select(clips: ClipSet, speakers: Sequence[str]) -> ClipSet:
    """Clips of the given speaker keys."""
    keys = set(speakers)
    return clips.subset([i for i, u in enumerate(clips.utterances) if u.speaker_key in keys])


def write_plan(
    config: TrainConfig, utterances: Sequence[Utterance], out_dir: Path
) -> dict[str, RunSpec]:
    """Plan every run, save ``folds.json``, ``plan.json`` and ``config.json``; return the plan."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_corpus = corpus_folds(utterances, config.folds)
    save_folds(combined_folds(per_corpus), out_dir / FOLDS_FILE)
    plan = all_runs(utterances, config.folds)
    (out_dir / PLAN_FILE).write_text(
        json.dumps({name: asdict(run) for name, run in plan.items()}, indent=1) + "\n"
    )
    (out_dir / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=1) + "\n")
    return plan


def read_recipe(run_dir: Path) -> TrainConfig:
    """The recipe of a run directory (its ``config.json``; tables it lacks read as defaults).

    Evaluation, packaging and reproduction read the recipe here, not from a checkpoint: a
    checkpoint keeps the recipe as its training process knew it, and tables added later (for
    example ``[export]``) are missing there.
    """
    return parse_config(json.loads((run_dir / CONFIG_FILE).read_text()))


def read_plan(run_dir: Path) -> dict[str, RunSpec]:
    """The ``plan.json`` of a run directory."""
    records = json.loads((run_dir / PLAN_FILE).read_text())
    return {
        name: RunSpec(
            record["name"],
            tuple(record["train_speakers"]),
            tuple(record["validation_speakers"]),
            tuple(record["test_speakers"]),
        )
        for name, record in records.items()
    }


def with_teacher(train: ClipSet, teacher_dir: Path, run: RunSpec, config: TrainConfig) -> ClipSet:
    """``train`` with the softened probabilities of the teacher run of the same name.

    Raises ``ValueError`` when the teacher's run used other speakers (different folds).
    """
    if read_plan(teacher_dir)[run.name] != run:
        raise ValueError(f"teacher run {teacher_dir / run.name} used other speakers than {run}")
    model_path = teacher_dir / run.name / "model.onnx"
    if not model_path.is_file():
        model, _, _ = load_checkpoint(teacher_dir / run.name / CHECKPOINT_FILE)
        export_onnx(model, model_path)
    logits = predict_onnx(model_path, train.waveforms)["logits"]
    probabilities = softmax(logits / config.distill.temperature, axis=1).astype(np.float32)
    log(f"teacher {model_path}: probabilities for {len(train)} training clips")
    return replace(train, teacher=probabilities)


def seeded_model_and_feeder(
    config: TrainConfig, train: ClipSet, validation: ClipSet
) -> tuple[SerModel | None, FrozenFeatureFeeder | None]:
    """Seed, then build the model and (for a pretrained backbone) the cache of its frozen part.

    Seeding first makes a run independent of the runs trained before it in the same process
    (the heads' initialisation and the cached augmented views come from the seed alone). For
    the compact backbone both are ``None``: :func:`train_run` builds them after seeding.
    """
    seed_everything(config.optim.seed, config.optim.threads)
    if config.model.backbone == "compact":
        return None, None
    model = build_model(config.model)
    feeder = FrozenFeatureFeeder(config, model, train, validation, config.data.frozen_views)
    log(
        f"cached the frozen part of the backbone: {config.data.frozen_views} views per "
        f"clip; fine-tuned top layers: {config.model.whisper_trainable_layers}"
    )
    return model, feeder


def write_environment(run_dir: Path) -> None:
    """Record the run's numeric environment (:func:`toolkit.numerics.training_environment`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    environment = training_environment()
    (run_dir / ENVIRONMENT_FILE).write_text(json.dumps(environment, indent=1) + "\n")


def is_trained(run_dir: Path, epochs: int) -> bool:
    """Whether ``run_dir`` holds a checkpoint and a history of ``epochs`` epochs."""
    history = run_dir / HISTORY_FILE
    if not (run_dir / CHECKPOINT_FILE).is_file() or not history.is_file():
        return False
    return len(json.loads(history.read_text())) >= epochs


def check_same_recipe(config: TrainConfig, out_dir: Path) -> None:
    """Exit if ``out_dir`` already holds runs of another recipe: one run directory is one
    recipe, so its figures never pool runs of two configs."""
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return
    saved = json.loads(json.dumps(asdict(read_recipe(out_dir))))  # missing tables: defaults
    wanted = json.loads(json.dumps(asdict(config)))
    if saved != wanted:
        sections = sorted(k for k in wanted.keys() | saved.keys() if saved.get(k) != wanted.get(k))
        sys.exit(
            f"{out_dir} holds runs of another recipe (differs in {', '.join(sections)} of "
            f"{path}); train into another --out, or remove it"
        )


def train_runs(
    config: TrainConfig, out_dir: Path, names: Sequence[str], resume: bool = False
) -> None:
    """Train the named runs (``fold0``.., ``final``, ``cross_*``) into ``out_dir/<name>``.

    With ``resume``, runs that already finished (checkpoint and every epoch's history) are
    kept, so an interrupted ``make train`` continues where it stopped; a run cut off mid-way
    is trained again from the start.
    """
    check_same_recipe(config, out_dir)
    if resume:
        finished = [n for n in names if is_trained(out_dir / n, config.optim.epochs)]
        for name in finished:
            log(f"== run {name}: already trained ({config.optim.epochs} epochs), kept")
        names = [n for n in names if n not in finished]
        if not names:
            return
    utterances = load_utterances(config.data.corpora)
    plan = write_plan(config, utterances, out_dir)
    unknown = sorted(set(names) - set(plan))
    if unknown:
        sys.exit(f"unknown runs {unknown}; choose from {sorted(plan)}")
    neutral = neutral_point()
    clips = recipe_clips(config, utterances, neutral)
    labels = corpus_labels(utterances)
    for name in names:
        run = plan[name]
        log(
            f"== run {name}: {len(run.train_speakers)} train, "
            f"{len(run.validation_speakers)} validation, {len(run.test_speakers)} test speakers"
        )
        train = select(clips, run.train_speakers)
        validation = select(clips, run.validation_speakers)
        if config.distill.teacher_run_dir:
            train = with_teacher(train, Path(config.distill.teacher_run_dir), run, config)
        model, feeder = seeded_model_and_feeder(config, train, validation)
        write_environment(out_dir / name)
        train_run(config, train, validation, labels, neutral, out_dir / name, log, feeder, model)
