"""The training loop: one run (train speakers -> best checkpoint on validation speakers)."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from service.labels import CANONICAL_LABELS
from toolkit.data.affect_norms import Affect
from toolkit.model.ser_model import SerModel, SerOutputs, build_model
from toolkit.train import losses
from toolkit.train.augment import Augmenter, TrainingExample
from toolkit.train.config import LossConfig, TrainConfig, parse_config
from toolkit.train.dataset import (
    ClipSet,
    label_class_weights,
    octant_class_weights,
    octant_targets,
    pad_batch,
    shuffled_batches,
)
from toolkit.train.predict import predict, restricted_ua
from toolkit.train.weight_average import WeightAverage

PROJECTION_DIM = 64
"""Width of the SupCon projection head (discarded after training, Khosla et al. 2020)."""
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"

Log = Callable[[str], None]


class AuxiliaryModules(nn.Module):
    """Trainable parts used only by the losses: centre-loss centres, SupCon projection."""

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.center = losses.CenterLoss(len(CANONICAL_LABELS), embedding_dim)
        self.projection = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim),
            nn.ReLU(),
            nn.Linear(embedding_dim, PROJECTION_DIM),
        )


@dataclass(frozen=True)
class BatchTargets:
    """Targets of one batch: ``acted``/``soft`` ``(B, 9)``, ``affect`` ``(B, 3)``,
    ``octant`` int64 ``(B,)`` (-1 = none), ``label`` int64 ``(B,)`` dominant acted label;
    ``teacher`` ``(B, 9)`` when every example has one; ``clean`` ``(B, 9)`` and ``has_clean``
    bool ``(B,)`` when any example has a clean-view target (rows without one are zeros)."""

    acted: Tensor
    soft: Tensor
    affect: Tensor
    octant: Tensor
    label: Tensor
    teacher: Tensor | None = None
    clean: Tensor | None = None
    has_clean: Tensor | None = None


def batch_targets(examples: Sequence[TrainingExample], neutral: Affect) -> BatchTargets:
    """Stack per-example targets into tensors."""
    acted = np.stack([e.acted for e in examples]).astype(np.float32)
    affect = np.stack([e.affect for e in examples]).astype(np.float32)
    return BatchTargets(
        acted=torch.from_numpy(acted),
        soft=torch.from_numpy(np.stack([e.soft for e in examples]).astype(np.float32)),
        affect=torch.from_numpy(affect),
        octant=torch.from_numpy(octant_targets(affect, neutral)),
        label=torch.from_numpy(acted.argmax(axis=1)),
        teacher=_teacher_tensor(examples),
        **_clean_tensors(examples),
    )


def _teacher_tensor(examples: Sequence[TrainingExample]) -> Tensor | None:
    teachers = [e.teacher for e in examples]
    if any(t is None for t in teachers):
        return None
    return torch.from_numpy(np.stack(teachers).astype(np.float32))  # type: ignore[arg-type]


def _clean_tensors(examples: Sequence[TrainingExample]) -> dict[str, Tensor]:
    """``clean`` and ``has_clean`` of :class:`BatchTargets`, or nothing if no example has one."""
    has_clean = np.array([e.clean is not None for e in examples])
    if not has_clean.any():
        return {}
    width = next(e.clean for e in examples if e.clean is not None).shape[0]
    rows = [np.zeros(width) if e.clean is None else e.clean for e in examples]
    return {
        "clean": torch.from_numpy(np.stack(rows).astype(np.float32)),
        "has_clean": torch.from_numpy(has_clean),
    }


def loss_terms(
    outputs: SerOutputs,
    targets: BatchTargets,
    aux: AuxiliaryModules,
    config: TrainConfig,
    octant_weights: Tensor,
    class_weights: Tensor | None = None,
) -> dict[str, Tensor]:
    """Unweighted value of every loss term for one batch (``class_weights`` ``(9,)``
    re-weights the categorical terms when class-balanced training is on; ``distill`` is
    present when the batch carries teacher probabilities, ``consistency`` when its weight is
    above 0)."""
    terms = _base_terms(outputs, targets, aux, config.loss, octant_weights, class_weights)
    if targets.teacher is not None:
        terms["distill"] = losses.distillation(
            outputs.heads.logits, targets.teacher, config.distill.temperature
        )
    if config.loss.consistency > 0:
        terms["consistency"] = _consistency_term(outputs, targets)
    return terms


def _consistency_term(outputs: SerOutputs, targets: BatchTargets) -> Tensor:
    """The clean-view consistency term; 0 for a batch without any clean-view target."""
    logits = outputs.heads.logits
    if targets.clean is None or targets.has_clean is None:
        return logits.sum() * 0.0
    return losses.clean_consistency(logits, targets.clean, targets.has_clean)


def _base_terms(
    outputs: SerOutputs,
    targets: BatchTargets,
    aux: AuxiliaryModules,
    config: LossConfig,
    octant_weights: Tensor,
    class_weights: Tensor | None,
) -> dict[str, Tensor]:
    heads = outputs.heads
    return {
        "kl": losses.soft_kl(heads.logits, targets.acted, class_weights),
        "focal": losses.soft_focal(heads.logits, targets.acted, config.focal_gamma, class_weights),
        "distribution": losses.soft_kl(heads.distribution_logits, targets.soft),
        "center": aux.center(outputs.embedding, targets.label),
        "supcon": losses.supervised_contrastive(
            aux.projection(outputs.embedding), targets.label, config.supcon_temperature
        ),
        "affect": losses.ccc_loss(heads.vad, targets.affect),
        "octant": losses.octant_cross_entropy(heads.octant_logits, targets.octant, octant_weights),
    }


def loss_weights(config: TrainConfig, epoch: int) -> dict[str, float]:
    """Weight of each term at ``epoch`` (the octant weight decays)."""
    return {"distill": config.distill.weight, **_loss_weights(config.loss, epoch)}


def _loss_weights(config: LossConfig, epoch: int) -> dict[str, float]:
    return {
        "kl": config.kl,
        "focal": config.focal,
        "distribution": config.distribution,
        "center": config.center,
        "supcon": config.supcon,
        "affect": config.affect,
        "consistency": config.consistency,
        "octant": losses.octant_weight(
            epoch, config.octant_start, config.octant_end, config.octant_decay_epochs
        ),
    }


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to 0 at the last step."""
    optim = config.optim
    warmup = optim.warmup_epochs * steps_per_epoch
    total = optim.epochs * steps_per_epoch
    if step < warmup:
        return optim.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return optim.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(
    model: SerModel, aux: AuxiliaryModules, backbone_scale: float
) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters, each with its ``lr_scale``.

    One group (scale 1) unless ``backbone_scale`` differs from 1; then the backbone's
    trainable parameters form a second group with that scale.
    """
    trainable = [p for p in [*model.parameters(), *aux.parameters()] if p.requires_grad]
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone_scale == 1.0 or not backbone:
        return [{"params": trainable, "lr_scale": 1.0}]
    backbone_ids = {id(p) for p in backbone}
    rest = [p for p in trainable if id(p) not in backbone_ids]
    return [{"params": rest, "lr_scale": 1.0}, {"params": backbone, "lr_scale": backbone_scale}]


def seed_everything(seed: int, threads: int) -> None:
    """Seed python, numpy and torch; fix the thread count; deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass(frozen=True)
class TrainOutcome:
    """Where the best checkpoint went and how good it was on the validation speakers."""

    checkpoint: Path
    best_epoch: int
    best_validation_ua: float


class Feeder(Protocol):
    """Turns clip indices into model outputs: from waveforms, or from cached frames."""

    def train_batch(
        self, model: SerModel, indices: np.ndarray
    ) -> tuple[SerOutputs, list[TrainingExample]]: ...

    def validation_logits(self, model: SerModel) -> np.ndarray: ...


class WaveformFeeder:
    """The default feeder: augmented waveforms through the whole model."""

    def __init__(self, config: TrainConfig, train: ClipSet, validation: ClipSet) -> None:
        self.augmenter = Augmenter(config.augment, train, seed=config.optim.seed + 1)
        self.validation = validation
        self.batch_size = config.optim.batch_size

    def train_batch(
        self, model: SerModel, indices: np.ndarray
    ) -> tuple[SerOutputs, list[TrainingExample]]:
        """Augment the clips at ``indices`` and run the model on the padded batch."""
        examples = [self.augmenter.example(int(i)) for i in indices]
        waveform, lengths = pad_batch([e.waveform for e in examples])
        return model(waveform, lengths), examples

    def validation_logits(self, model: SerModel) -> np.ndarray:
        """``(N, 9)`` logits of the clean validation clips."""
        return predict(model, self.validation, self.batch_size)["logits"]


def train_run(
    config: TrainConfig,
    train: ClipSet,
    validation: ClipSet,
    corpus_labels: Mapping[str, Sequence[str]],
    neutral: Affect,
    out_dir: Path,
    log: Log = print,
    feeder: Feeder | None = None,
    model: SerModel | None = None,
) -> TrainOutcome:
    """Train on ``train``, keep the epoch with the best mean validation UA, save it.

    The validation UA is the mean over corpora of the UA with the argmax restricted to each
    corpus's labels. With ``optim.average_from_epoch`` set, the saved weights are instead the
    mean of the weights at the ends of that epoch and every later one (the outcome's
    ``best_epoch`` is then the last epoch and its UA the mean weights' UA).
    Writes ``checkpoint.pt`` and ``history.json`` into ``out_dir``.
    ``feeder`` defaults to :class:`WaveformFeeder`; ``model`` to a new ``build_model``.
    """
    seed_everything(config.optim.seed, config.optim.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model or build_model(config.model)
    aux = AuxiliaryModules(config.model.embedding_dim)
    feeder = feeder or WaveformFeeder(config, train, validation)
    parameters = [p for p in [*model.parameters(), *aux.parameters()] if p.requires_grad]
    groups = parameter_groups(model, aux, config.optim.backbone_learning_rate_scale)
    optimizer = torch.optim.AdamW(
        groups, lr=config.optim.learning_rate, weight_decay=config.optim.weight_decay
    )
    octant_weights = torch.from_numpy(octant_class_weights(octant_targets(train.affect, neutral)))
    class_weights = (
        torch.from_numpy(label_class_weights(train.labels)) if config.loss.class_balanced else None
    )
    batch_rng = np.random.default_rng(config.optim.seed + 2)
    steps_per_epoch = math.ceil(len(train) / config.optim.batch_size)
    history: list[dict[str, Any]] = []
    best = TrainOutcome(out_dir / CHECKPOINT_FILE, -1, -1.0)
    average_from = config.optim.average_from_epoch
    average = WeightAverage(model, average_from) if average_from is not None else None
    step = 0
    for epoch in range(config.optim.epochs):
        started = time.monotonic()
        model.train()
        aux.train()
        weights = loss_weights(config, epoch)
        sums: dict[str, float] = {}
        for indices in shuffled_batches(len(train), config.optim.batch_size, batch_rng):
            for group in optimizer.param_groups:
                group["lr"] = group["lr_scale"] * learning_rate(config, step, steps_per_epoch)
            outputs, examples = feeder.train_batch(model, indices)
            terms = loss_terms(
                outputs,
                batch_targets(examples, neutral),
                aux,
                config,
                octant_weights,
                class_weights,
            )
            total = sum((weights[name] * value for name, value in terms.items()), torch.zeros(()))
            optimizer.zero_grad(set_to_none=True)
            total.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(parameters, config.optim.grad_clip_norm)
            optimizer.step()
            step += 1
            for name, value in {**terms, "total": total}.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / steps_per_epoch
        ua, score = validation_score(model, feeder, validation, corpus_labels)
        record = {
            "epoch": epoch,
            "seconds": round(time.monotonic() - started, 1),
            "lr": learning_rate(config, step - 1, steps_per_epoch),
            "octant_weight": weights["octant"],
            "train_loss": {k: round(v, 4) for k, v in sums.items()},
            "validation_ua": {k: round(v, 4) for k, v in ua.items()},
            "validation_score": round(score, 4),
        }
        history.append(record)
        log(json.dumps(record))
        if average is not None:
            average.add_epoch_end(model, epoch)
        elif score > best.best_validation_ua:
            best = TrainOutcome(best.checkpoint, epoch, score)
            save_checkpoint(model, config, corpus_labels, epoch, score, best.checkpoint)
        (out_dir / HISTORY_FILE).write_text(json.dumps(history, indent=1) + "\n")
    if average is not None:
        best = _save_average(
            model, average, config, corpus_labels, feeder, validation, best.checkpoint
        )
        kept = f"mean of the weights of epochs {average.from_epoch}-{best.best_epoch}"
    else:
        kept = f"best epoch {best.best_epoch}"
    log(f"{kept} validation UA {best.best_validation_ua:.4f}")
    return best


def validation_score(
    model: SerModel, feeder: Feeder, validation: ClipSet, corpus_labels: Mapping[str, Sequence[str]]
) -> tuple[dict[str, float], float]:
    """UA per corpus on the clean validation clips (argmax restricted to each corpus's labels)
    and their mean, the score a run keeps its weights by; leaves ``model`` in eval mode."""
    model.eval()
    with torch.no_grad():
        ua = restricted_ua(feeder.validation_logits(model), validation, corpus_labels)
    return ua, float(np.mean(list(ua.values())))


def _save_average(
    model: SerModel,
    average: WeightAverage,
    config: TrainConfig,
    corpus_labels: Mapping[str, Sequence[str]],
    feeder: Feeder,
    validation: ClipSet,
    checkpoint: Path,
) -> TrainOutcome:
    """Load the averaged weights into ``model``, score and save them as ``checkpoint``."""
    average.load_into(model)
    _, score = validation_score(model, feeder, validation, corpus_labels)
    last_epoch = config.optim.epochs - 1
    save_checkpoint(model, config, corpus_labels, last_epoch, score, checkpoint)
    return TrainOutcome(checkpoint, last_epoch, score)


def save_checkpoint(
    model: SerModel,
    config: TrainConfig,
    corpus_labels: Mapping[str, Sequence[str]],
    epoch: int,
    validation_ua: float,
    path: Path,
) -> None:
    """Model weights plus everything needed to rebuild it (config as a plain dict)."""
    torch.save(
        {
            "model_state": model.state_dict(),
            "config": asdict(config),
            "corpus_labels": {k: list(v) for k, v in corpus_labels.items()},
            "epoch": epoch,
            "validation_ua": validation_ua,
        },
        path,
    )


def load_checkpoint(path: Path) -> tuple[SerModel, TrainConfig, dict[str, list[str]]]:
    """Rebuild the model of a checkpoint in eval mode; returns (model, config, corpus labels)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = parse_config(state["config"])
    model = build_model(config.model)
    model.load_state_dict(state["model_state"])
    model.eval()
    return model, config, state["corpus_labels"]
