"""Training configuration, read from TOML (``toolkit/configs/*.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from toolkit.model.compact import CompactConfig
from toolkit.model.ser_model import ModelConfig
from toolkit.train.augment import AugmentConfig


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which corpora, longest clip used for training (seconds), how many
    versions of each training clip (1 clean + augmented) a frozen backbone caches, and how
    leading and trailing silence is cut (``toolkit/data/speech_crop.py``; the exported
    manifest asks the service to cut the same way):

    - ``speech_crop``: training clips too are cut to their speech (0.1 s margin);
    - ``serve_crop_to_training_silence``: training clips stay whole; evaluation and serving
      cut silence down to the margin the run's training clips had: their mean silence per
      side, or with ``serve_crop_silence_quantile`` that quantile of it (0.9: only silence
      longer than nine in ten training clips had is cut).
    """

    corpora: tuple[str, ...] = ("ravdess", "emodb")
    max_duration_s: float = 6.0
    frozen_views: int = 4
    speech_crop: bool = False
    serve_crop_to_training_silence: bool = False
    serve_crop_silence_quantile: float | None = None

    def __post_init__(self) -> None:
        quantile = self.serve_crop_silence_quantile
        if quantile is not None and not 0.0 <= quantile <= 1.0:
            raise ValueError(f"data.serve_crop_silence_quantile is {quantile}; use 0-1")
        if self.speech_crop and self.serve_crop_to_training_silence:
            raise ValueError(
                "data.speech_crop and data.serve_crop_to_training_silence exclude each other;"
                " set at most one"
            )


@dataclass(frozen=True)
class FoldConfig:
    """``[folds]``: fold counts and validation speakers per corpus, and the seed.

    RAVDESS 5 folds of 4 actors, EmoDB 4 folds of 2 speakers (the task's protocol).
    """

    seed: int = 0
    n_folds: dict[str, int] = field(default_factory=lambda: {"ravdess": 5, "emodb": 4})
    validation_speakers: dict[str, int] = field(default_factory=lambda: {"ravdess": 2, "emodb": 1})


@dataclass(frozen=True)
class LossConfig:
    """``[loss]``: weight of each loss term and its hyper-parameters.

    Attributes:
        kl: KL to the acted-label mix on ``logits`` (Wang et al. main term).
        focal: focal loss on ``logits``; ``focal_gamma`` 2 (Lin et al. 2017).
        distribution: KL to the rater soft label on ``distribution_logits``.
        center: center loss on the embedding (Wen et al. 2016).
        supcon: supervised contrastive loss (Khosla et al. 2020) on a projection;
            ``supcon_temperature`` 0.1 (their CIFAR setting).
        affect: 1 - CCC per affect dimension (EmoSphere-SER).
        octant_start, octant_end, octant_decay_epochs: octant CE weight schedule
            (EmoSphere-SER: 1 -> 0.01 over the first epochs).
        class_balanced: weight the categorical terms by balanced label weights (UA target).
        consistency: weight of the clean-view consistency term (0 = off, and then nothing of
            it is computed): KL from the model's own prediction on a training clip's clean
            cached view to its prediction on the augmented view drawn for the step
            (:func:`toolkit.train.losses.clean_consistency`; needs a cached backbone).
    """

    kl: float = 1.0
    focal: float = 1.0
    focal_gamma: float = 2.0
    distribution: float = 1.0
    center: float = 0.01
    supcon: float = 0.1
    supcon_temperature: float = 0.1
    affect: float = 0.5
    octant_start: float = 1.0
    octant_end: float = 0.01
    octant_decay_epochs: int = 10
    class_balanced: bool = False
    consistency: float = 0.0

    def __post_init__(self) -> None:
        if self.consistency < 0:
            raise ValueError(f"loss.consistency is {self.consistency}; use 0 (off) or more")


@dataclass(frozen=True)
class DistillConfig:
    """``[distill]``: knowledge distillation from a teacher trained on the same folds.

    Attributes:
        teacher_run_dir: run directory of the teacher (same folds and run names, e.g. the
            frozen Whisper runs); empty = no distillation. The teacher of run ``fold0`` is
            ``<teacher_run_dir>/fold0``, so it never saw the student's test speakers.
        weight: weight of the distillation term.
        temperature: softening temperature of teacher and student (Hinton et al. 2015,
            "Distilling the Knowledge in a Neural Network"; the term is scaled by T^2).
    """

    teacher_run_dir: str = ""
    weight: float = 1.0
    temperature: float = 2.0


@dataclass(frozen=True)
class OptimConfig:
    """``[optim]``: AdamW with linear warm-up then cosine decay; one thread by default.

    ``backbone_learning_rate_scale`` multiplies the learning rate of the backbone's trainable
    parameters (fine-tuned Whisper layers): pretrained layers take smaller steps than the new
    pooling and heads (discriminative fine-tuning, Howard & Ruder 2018, ULMFiT, section 3.2).

    ``average_from_epoch`` (0-based; unset by default) makes the run's checkpoint the uniform
    mean of the weights at the ends of that epoch and every later one (stochastic weight
    averaging, :mod:`toolkit.train.weight_average`) instead of the epoch with the best
    validation UA.
    """

    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    seed: int = 0
    threads: int = 1
    grad_clip_norm: float = 5.0
    backbone_learning_rate_scale: float = 1.0
    average_from_epoch: int | None = None

    def __post_init__(self) -> None:
        start = self.average_from_epoch
        if start is not None and not 0 <= start < self.epochs:
            raise ValueError(
                f"optim.average_from_epoch is {start}; use an epoch from 0 to {self.epochs - 1}"
                " (0-based, below optim.epochs)"
            )


@dataclass(frozen=True)
class ExportConfig:
    """``[export]``: how ``toolkit evaluate`` derives the int8 graph from the fp32 export.

    ``int8_method`` is ``static`` (activation ranges calibrated on training clips),
    ``dynamic`` (ranges measured per call) or ``dynamic_matmul`` (the same, convolutions left
    float); see ``toolkit.export.INT8_METHODS``.
    """

    int8_method: str = "static"


CALIBRATION_SPEAKERS: tuple[str, ...] = ("out_of_fold", "validation")


@dataclass(frozen=True)
class CalibrationConfig:
    """``[calibration]``: which held-out speakers ``toolkit evaluate`` fits the temperatures
    and the abstain threshold on (training never reads it).

    ``out_of_fold`` (default): the folds' test predictions, each speaker scored by the fold
    model that never trained on it (every speaker of the corpora). A fold's own figures use
    the fit on the *other* folds (cross-fitted: its test speakers never enter it); runs that
    are not folds (``final``, ``cross_*``) use the fit on all folds. Needs two folds or more;
    with fewer, evaluation falls back to ``validation`` and says so.
    ``validation``: each run's own validation speakers (3 per fold here), the set that also
    picks its best epoch; docs/training.md measures why that is not the default.
    """

    speakers: str = "out_of_fold"

    def __post_init__(self) -> None:
        if self.speakers not in CALIBRATION_SPEAKERS:
            raise ValueError(
                f"calibration.speakers is {self.speakers!r}; use one of {CALIBRATION_SPEAKERS}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """The whole training recipe."""

    data: DataConfig = field(default_factory=DataConfig)
    folds: FoldConfig = field(default_factory=FoldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    def __post_init__(self) -> None:
        if self.loss.consistency == 0:
            return
        if self.model.backbone == "compact":
            raise ValueError(
                "loss.consistency needs the clean and augmented views a pretrained backbone "
                'caches (model.backbone = "whisper_tiny"); the compact backbone trains on '
                "waveforms augmented afresh, so set loss.consistency = 0 for it"
            )
        if self.data.frozen_views < 2:
            raise ValueError(
                f"loss.consistency needs augmented views besides the clean one; "
                f"data.frozen_views is {self.data.frozen_views}, use 2 or more"
            )


T = TypeVar("T")


def _build(cls: type[T], table: dict[str, Any]) -> T:
    """Dataclass ``cls`` from a TOML table; lists become tuples; unknown keys raise."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown keys {unknown} for {cls.__name__}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**values)


def parse_config(document: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from a parsed TOML document (missing tables keep defaults)."""
    model_table = dict(document.get("model", {}))
    compact = _build(CompactConfig, model_table.pop("compact", {}))
    return TrainConfig(
        data=_build(DataConfig, document.get("data", {})),
        folds=_build(FoldConfig, document.get("folds", {})),
        model=replace(_build(ModelConfig, model_table), compact=compact),
        augment=_build(AugmentConfig, document.get("augment", {})),
        loss=_build(LossConfig, document.get("loss", {})),
        optim=_build(OptimConfig, document.get("optim", {})),
        distill=_build(DistillConfig, document.get("distill", {})),
        export=_build(ExportConfig, document.get("export", {})),
        calibration=_build(CalibrationConfig, document.get("calibration", {})),
    )


def load_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` and apply ``table.key=value`` overrides (values in TOML syntax)."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    for override in overrides or []:
        apply_override(document, override)
    return parse_config(document)


def apply_override(document: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in ``document``; ``value`` is parsed as TOML."""
    dotted, _, text = override.partition("=")
    if not text:
        raise ValueError(f"override {override!r} must look like table.key=value")
    *tables, key = dotted.strip().split(".")
    target = document
    for table in tables:
        target = target.setdefault(table, {})
    target[key] = tomllib.loads(f"value = {text.strip()}")["value"]
