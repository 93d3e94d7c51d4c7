"""The model manifest: the contract between the toolkit that exports a model and the service.

A model lives in ``models/<name>/<version>/`` as ``model.onnx`` plus ``manifest.json``. The
manifest says which ONNX inputs and outputs carry what, with which labels, at which sampling
rate, and what the model measured on held-out speakers. See ``docs/model-contract.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.audio.segment import SPEECH_PAD_S
from service.errors import ModelLoadError
from service.labels import AFFECT_DIMENSIONS, CANONICAL_LABELS, OCTANTS

MANIFEST_FILE_NAME = "manifest.json"
SHA256_HEX_LENGTH = 64
MAX_CROP_MARGIN_S = 5.0
"""Largest ``windowing.crop_margin_s`` a manifest may ask for (RAVDESS clips have about 1 s
of silence on each side; a margin beyond a few seconds no longer crops anything)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputNames(_Frozen):
    """Names of the ONNX graph inputs.

    ``waveform`` is float32 ``(batch, samples)`` in [-1, 1] at ``sampling_rate_hz``;
    ``lengths`` (optional) is int64 ``(batch,)``, the number of valid samples per row of a
    zero-padded batch.
    """

    waveform: str = "waveform"
    lengths: str | None = "lengths"


class LabelledHead(_Frozen):
    """An output of shape ``(batch, len(labels))``."""

    output: str
    labels: tuple[str, ...]


class CategoricalHead(LabelledHead):
    """Logits over canonical emotion labels; the service applies softmax(logits / temperature)."""

    temperature: Annotated[float, Field(gt=0.0)] = 1.0

    @field_validator("labels")
    @classmethod
    def _canonical(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        return _check_canonical(labels)


class DistributionHead(CategoricalHead):
    """Logits of the mixed-emotion label distribution (softmax gives the distribution)."""


class AffectHead(LabelledHead):
    """Valence, arousal, dominance in [0, 1] (0.5 is the scale midpoint), shape ``(batch, 3)``."""

    labels: tuple[str, ...] = AFFECT_DIMENSIONS

    @field_validator("labels")
    @classmethod
    def _order(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if tuple(labels) != AFFECT_DIMENSIONS:
            raise ValueError(f"affect labels must be exactly {list(AFFECT_DIMENSIONS)}")
        return labels


class OctantHead(LabelledHead):
    """Logits of the auxiliary EmoSphere octant classifier, shape ``(batch, 8)``."""

    labels: tuple[str, ...] = OCTANTS

    @field_validator("labels")
    @classmethod
    def _order(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if tuple(labels) != OCTANTS:
            raise ValueError(f"octant labels must be exactly {list(OCTANTS)}")
        return labels


class AttentionHead(_Frozen):
    """Frame-level attention weights (FLAM), shape ``(batch, frames)``, each row sums to 1."""

    output: str
    frame_hop_s: Annotated[float, Field(gt=0.0)]


class EnsembleHead(_Frozen):
    """Per-member categorical logits, shape ``(batch, members, len(categorical.labels))``."""

    output: str


class Heads(_Frozen):
    categorical: CategoricalHead
    distribution: DistributionHead | None = None
    affect: AffectHead | None = None
    octant: OctantHead | None = None
    attention: AttentionHead | None = None
    ensemble: EnsembleHead | None = None

    def output_names(self) -> dict[str, str]:
        """Map head name -> ONNX output name for every head the model has."""
        heads = {
            "categorical": self.categorical,
            "distribution": self.distribution,
            "affect": self.affect,
            "octant": self.octant,
            "attention": self.attention,
            "ensemble": self.ensemble,
        }
        return {name: head.output for name, head in heads.items() if head is not None}


class NeutralPoint(_Frozen):
    """Centre of the affect space in [0, 1] coordinates; octants are signs around it."""

    valence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    arousal: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    dominance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class Windowing(_Frozen):
    """How audio longer than one window is cut: windows of ``window_s`` every ``hop_s``."""

    window_s: Annotated[float, Field(gt=0.0)]
    hop_s: Annotated[float, Field(gt=0.0)]
    min_duration_s: Annotated[float, Field(gt=0.0)] = 0.5
    max_input_s: Annotated[float, Field(gt=0.0)] | None = None
    """Longest input the graph accepts (a Whisper encoder: 30 s); ``None``: any length."""
    crop_to_speech: bool = False
    """The service drops leading and trailing silence of a recording that fits one window
    instead of analysing it whole: the model was trained on clips cut to their speech
    (``[data] speech_crop`` of its recipe) or is served cut to the silence its training clips
    had (``[data] serve_crop_to_training_silence``)."""
    crop_margin_s: Annotated[float, Field(ge=0.0, le=MAX_CROP_MARGIN_S)] = SPEECH_PAD_S
    """Seconds of silence kept before the first and after the last speech when
    ``crop_to_speech``."""

    @model_validator(mode="after")
    def _hop_within_window(self) -> Windowing:
        if self.hop_s > self.window_s:
            raise ValueError("hop_s must not exceed window_s (windows would leave gaps)")
        if self.max_input_s is not None and self.window_s > self.max_input_s:
            raise ValueError(
                "window_s must not exceed max_input_s (the graph refuses longer input)"
            )
        return self


class Uncertainty(_Frozen):
    """How the model's uncertainty is summarised, and when the service abstains."""

    measure: Literal["entropy", "ensemble_mutual_information"] = "entropy"
    abstain_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Manifest(_Frozen):
    """Everything the service needs to know about one exported model."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]
    file: str = "model.onnx"
    sha256: Annotated[str, Field(min_length=SHA256_HEX_LENGTH, max_length=SHA256_HEX_LENGTH)]
    sampling_rate_hz: Annotated[int, Field(ge=8000, le=48000)]
    inputs: InputNames = InputNames()
    heads: Heads
    windowing: Windowing
    neutral_point: NeutralPoint = NeutralPoint()
    uncertainty: Uncertainty = Uncertainty()
    metrics: dict[str, float] = Field(default_factory=dict)
    """Headline figures from the model card, e.g. ``{"ravdess_ua_8class": 0.61}``."""
    metrics_protocol: str = ""
    """How the figures were obtained (split, speakers held out)."""
    cue_norms: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    """Per-gender neutral-speech cue norms: gender -> cue -> {"mean", "std"} (explanations)."""
    description: str = ""
    licence: str = ""

    @field_validator("file")
    @classmethod
    def _plain_file_name(cls, file: str) -> str:
        if "/" in file or "\\" in file or file.startswith("."):
            raise ValueError("file must be a plain file name inside the model directory")
        return file


def _check_canonical(labels: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [label for label in labels if label not in CANONICAL_LABELS]
    if unknown:
        raise ValueError(f"labels {unknown} are not canonical; use {list(CANONICAL_LABELS)}")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be unique")
    if len(labels) < 2:
        raise ValueError("a categorical head needs at least two labels")
    return labels


def read_manifest(model_dir: Path) -> Manifest:
    """Read and validate ``model_dir/manifest.json``.

    Raises:
        ModelLoadError: the file is missing, not JSON, or breaks the contract; the message
            names the file and the offending field.
    """
    path = model_dir / MANIFEST_FILE_NAME
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: manifest missing") from exc
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        raise ModelLoadError(f"{path}: {_describe(exc)}") from exc


def write_manifest(manifest: Manifest, model_dir: Path) -> Path:
    """Write ``manifest`` as indented JSON to ``model_dir/manifest.json``; return the path."""
    path = model_dir / MANIFEST_FILE_NAME
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
