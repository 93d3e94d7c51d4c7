"""A compact CNN backbone trained from scratch: log-mel -> 2-D conv stem -> 1-D residual blocks.

Same interface as ``toolkit.backbones.whisper_tiny.WhisperTinyEncoder``:
``forward(waveform (B, S), lengths (B,)) -> (frames (B, T, D), valid_mask (B, T))``,
``output_dim``, ``frame_hop_s`` and ``set_trainable_layers(k)``.

Every layer re-applies the frame mask, so padded frames stay exactly zero and a row's valid
frames do not depend on how much padding follows it (the convolutions' own zero padding
sees the same zeros).

Cost for a 3 s clip (300 log-mel frames, 64 bands), multiply-accumulates per layer:
conv 1->16 (32x300 out) 1.4 M; conv 16->32 (16x150) 11.1 M; conv 32->48 (8x150) 16.6 M;
projection 384->128 7.4 M; 2 residual blocks of 2 convs 128->128 k3 29.5 M; total about 66 M
(``count_macs`` computes it for any length). DistilHuBERT's wave CNN alone costs about 2.4 G
per second of audio (wav2vec 2.0 extractor, Baevski et al. 2020, 7 conv layers of 512 channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from toolkit.model.frontend import N_MELS, LogMelFrontend
from toolkit.model.masked_norm import MaskedBatchNorm


@dataclass(frozen=True)
class CompactConfig:
    """Widths of the compact backbone.

    Attributes:
        n_mels: mel bands of the front end.
        stem_channels: output channels of the three 2-D convolutions.
        width: channels of the 1-D residual part (= ``output_dim``).
        dilations: one residual block per entry, its dilation in frames.
        dropout: dropout inside the residual blocks.
    """

    n_mels: int = N_MELS
    stem_channels: tuple[int, int, int] = (16, 32, 48)
    width: int = 128
    dilations: tuple[int, ...] = (1, 2)
    dropout: float = 0.1


def halve_counts(frame_counts: Tensor) -> Tensor:
    """Frames after a kernel-3, padding-1, stride-2 layer: ``(n - 1) // 2 + 1``."""
    return torch.div(frame_counts - 1, 2, rounding_mode="floor") + 1


def mask_of(frame_counts: Tensor, frames: int) -> Tensor:
    """Bool ``(B, frames)``: True on the first ``frame_counts[b]`` frames."""
    return torch.arange(frames, device=frame_counts.device)[None, :] < frame_counts[:, None]


class _ConvNorm2d(nn.Module):
    """3x3 convolution, masked batch norm, ReLU on ``(B, C, F, T)``; padded frames zeroed."""

    def __init__(self, in_ch: int, out_ch: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm = MaskedBatchNorm(out_ch)

    def forward(self, features: Tensor, frame_counts: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the features and the bool mask ``(B, T_out)`` of the output frames."""
        hidden = self.conv(features)
        mask = mask_of(frame_counts, hidden.shape[-1])
        hidden = torch.relu(self.norm(hidden, mask))
        return hidden * mask[:, None, None, :].to(hidden.dtype), mask


class _ResidualBlock1d(nn.Module):
    """Two kernel-3 dilated convolutions with batch norm and a skip connection, ``(B, C, T)``."""

    def __init__(self, width: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv_a = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm_a = MaskedBatchNorm(width)
        self.conv_b = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm_b = MaskedBatchNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """``features`` ``(B, C, T)``, bool ``mask`` ``(B, T)`` -> ``(B, C, T)``."""
        weights = mask[:, None, :].to(features.dtype)
        hidden = torch.relu(self.norm_a(self.conv_a(features), mask)) * weights
        hidden = self.norm_b(self.conv_b(self.dropout(hidden)), mask)
        return torch.relu(features + hidden) * weights


class CompactBackbone(nn.Module):
    """Waveform ``(B, S)`` at 16 kHz -> frame features ``(B, T, width)`` every 20 ms."""

    def __init__(self, config: CompactConfig | None = None) -> None:
        super().__init__()
        self.config = config or CompactConfig()
        c1, c2, c3 = self.config.stem_channels
        self.frontend = LogMelFrontend(self.config.n_mels)
        self.stem = nn.ModuleList(
            [_ConvNorm2d(1, c1, (2, 1)), _ConvNorm2d(c1, c2, (2, 2)), _ConvNorm2d(c2, c3, (2, 1))]
        )
        stem_bands = self.config.n_mels // 8
        self.projection = nn.Conv1d(c3 * stem_bands, self.config.width, 1, bias=False)
        self.projection_norm = MaskedBatchNorm(self.config.width)
        self.blocks = nn.ModuleList(
            [
                _ResidualBlock1d(self.config.width, d, self.config.dropout)
                for d in self.config.dilations
            ]
        )

    @property
    def output_dim(self) -> int:
        """Feature width ``D`` of the returned frames."""
        return self.config.width

    @property
    def frame_hop_s(self) -> float:
        """Seconds between output frames (log-mel hop times the stem's time stride 2)."""
        return 2 * self.frontend.frame_hop_s

    def set_trainable_layers(self, k: int) -> None:
        """Train only the last ``k`` residual blocks (and what follows); ``k < 0``: train all."""
        projection = nn.ModuleList([self.projection, self.projection_norm])
        layers: list[nn.Module] = [*self.stem, projection, *self.blocks]
        first_trainable = 0 if k < 0 else max(0, len(layers) - k)
        for index, layer in enumerate(layers):
            for parameter in layer.parameters():
                parameter.requires_grad_(index >= first_trainable)

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Encode a zero-padded batch.

        Args:
            waveform: float32 ``(B, S)`` in [-1, 1] at 16 kHz.
            lengths: int64 ``(B,)`` valid samples per row.
        Returns:
            frames float32 ``(B, T, width)`` (0 on padded frames) and bool ``valid_mask (B, T)``.
        """
        log_mel, mask = self.frontend(waveform, lengths)
        counts = mask.sum(dim=1)
        features = log_mel.unsqueeze(1)
        for index, layer in enumerate(self.stem):
            if index == 1:
                counts = halve_counts(counts)
            features, mask = layer(features, counts)
        batch, channels, bands, frames = features.shape
        hidden = self.projection(features.reshape(batch, channels * bands, frames))
        weights = mask[:, None, :].to(hidden.dtype)
        hidden = torch.relu(self.projection_norm(hidden, mask)) * weights
        for block in self.blocks:
            hidden = block(hidden, mask)
        return hidden.transpose(1, 2), mask


def count_macs(config: CompactConfig, log_mel_frames: int) -> int:
    """Multiply-accumulates of the convolutions for ``log_mel_frames`` input frames.

    Ignores batch norm, ReLU and the front end's FFT (a few M per 3 s).
    """
    c1, c2, c3 = config.stem_channels
    bands = config.n_mels
    frames_half = (log_mel_frames - 1) // 2 + 1
    stem = (
        c1 * (bands // 2) * log_mel_frames * 9
        + c2 * (bands // 4) * frames_half * 9 * c1
        + c3 * (bands // 8) * frames_half * 9 * c2
    )
    projection = frames_half * c3 * (bands // 8) * config.width
    blocks = len(config.dilations) * 2 * frames_half * config.width * config.width * 3
    return stem + projection + blocks
