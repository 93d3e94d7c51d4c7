"""The peers of issue 6: DistilHuBERT and wav2vec2-base architectures, exported to ONNX.

Random weights (seeded): the time of a forward pass does not depend on the weight values.
Both take ``waveform`` float32 ``(batch, samples)`` at 16 kHz and ``lengths`` int64
``(batch,)`` and return the last layer's frames ``(batch, frames, 768)`` and the valid frame
counts, as torchaudio's ``Wav2Vec2Model`` does; a classification head on top would add
well under 1 % of their time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torchaudio.models import Wav2Vec2Model, wav2vec2_base, wav2vec2_model

from bench.onnx_export import cache_tag, cached, export_speech_model

OUTPUT_NAMES = ("frames", "frame_lengths")
WEIGHT_SEED = 0


def distilhubert_architecture() -> Wav2Vec2Model:
    """DistilHuBERT (Chang, Yang and Lee, ICASSP 2022, section 3.1): HuBERT-base's 7-layer
    convolutional feature extractor (512 channels, group norm, no conv bias), then 2
    transformer layers 768 wide with 12 heads and a 3072-wide feed-forward layer;
    23.49 M parameters as in the paper. Its distillation prediction heads are left out:
    downstream tasks use the hidden states."""
    return wav2vec2_model(
        extractor_mode="group_norm",
        extractor_conv_layer_config=None,
        extractor_conv_bias=False,
        encoder_embed_dim=768,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=128,
        encoder_pos_conv_groups=16,
        encoder_num_layers=2,
        encoder_num_heads=12,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=3072,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )


def wav2vec2_base_architecture() -> Wav2Vec2Model:
    """wav2vec 2.0 base (Baevski et al. 2020): torchaudio's ``wav2vec2_base()``, 12 layers,
    94.4 M parameters."""
    return wav2vec2_base()


class FramesGraph(nn.Module):
    """``(waveform, lengths) -> (frames, frame_lengths)`` of a ``Wav2Vec2Model``."""

    def __init__(self, model: Wav2Vec2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        frames, frame_lengths = self.model(waveform, lengths)
        if frame_lengths is None:
            raise ValueError("Wav2Vec2Model returned no frame lengths although lengths were given")
        return frames, frame_lengths


@dataclass(frozen=True)
class PeerSpec:
    """One peer architecture and how to build it."""

    key: str
    description: str
    build: Callable[[], Wav2Vec2Model]


PEERS = (
    PeerSpec(
        "distilhubert",
        "DistilHuBERT architecture (Chang et al. 2022): wav2vec2 conv feature extractor + "
        "2 transformer layers, 768 wide, 12 heads, FFN 3072; random weights",
        distilhubert_architecture,
    ),
    PeerSpec(
        "wav2vec2-base",
        "wav2vec2-base architecture (Baevski et al. 2020, torchaudio.models.wav2vec2_base): "
        "conv feature extractor + 12 transformer layers, 768 wide; random weights",
        wav2vec2_base_architecture,
    ),
)


def build_peer(spec: PeerSpec) -> FramesGraph:
    """The peer in eval mode with seeded random weights."""
    torch.manual_seed(WEIGHT_SEED)
    return FramesGraph(spec.build()).eval()


def export_peer(spec: PeerSpec, cache_dir: Path) -> Path:
    """The peer's ONNX file under ``cache_dir`` (exported on first use, ~10-30 s each)."""
    path = cache_dir / f"{spec.key}-{cache_tag(spec.key, spec.description)}.onnx"
    return cached(path, lambda target: export_speech_model(build_peer(spec), target, OUTPUT_NAMES))
