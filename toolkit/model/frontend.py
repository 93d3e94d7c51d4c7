"""Log-mel front end that lives inside the exported ONNX graph.

The waveform enters the graph; the graph computes the log-mel spectrogram and normalises each
utterance over its valid frames only, so a zero-padded batch gives the same features for the
valid part of every row as the row alone.

The STFT is a strided ``conv1d`` with a fixed Hann-windowed DFT basis instead of
``torchaudio.transforms.MelSpectrogram``'s ``torch.stft``: both export with the dynamo
exporter, but ONNX Runtime's ``STFT`` kernel took 12.9 ms (n_fft 400) or 2.5 ms (n_fft 512)
per 3 s clip on one thread against 1.1 ms for the convolution (measured in this repository,
onnxruntime 1.31). The mel filterbank is torchaudio's (``melscale_fbanks``, HTK scale, the
``MelSpectrogram`` default), and ``tests/toolkit/test_model.py`` checks the result equals
``torchaudio.transforms.MelSpectrogram(center=False)``.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor, nn

SAMPLING_RATE_HZ = 16_000
"""Sampling rate of every corpus in ``shared/data`` (README: "All audio is 16 kHz")."""
WINDOW_SAMPLES = 400
"""25 ms analysis window at 16 kHz: the usual speech STFT frame (e.g. Kaldi fbank defaults)."""
HOP_SAMPLES = 160
"""10 ms frame shift at 16 kHz (Kaldi fbank default)."""
N_MELS = 64
"""Mel bands; 64 is the common choice for CNN audio classifiers (e.g. PANNs, Kong et al. 2020)."""
LOG_FLOOR = 1e-6
"""Added to mel power before the log so digital silence stays finite."""
STD_FLOOR = 1e-3
"""Lower bound of the per-utterance standard deviation (silence would divide by ~0)."""


def valid_frame_count(lengths_samples: Tensor) -> Tensor:
    """Frames of an STFT without centring: ``1 + (L - window) // hop``, at least 1.

    Args:
        lengths_samples: int64 ``(B,)`` valid samples per row.
    Returns:
        int64 ``(B,)`` valid frames per row.
    """
    frames = torch.div(lengths_samples - WINDOW_SAMPLES, HOP_SAMPLES, rounding_mode="floor") + 1
    return torch.clamp(frames, min=1)


def frame_mask(frame_counts: Tensor, total_frames: int) -> Tensor:
    """Boolean ``(B, T)`` mask, True on the first ``frame_counts[b]`` frames of row ``b``."""
    positions = torch.arange(total_frames, device=frame_counts.device)
    return positions.unsqueeze(0) < frame_counts.unsqueeze(1)


def dft_basis(window_samples: int) -> Tensor:
    """Hann-windowed real DFT basis ``(2 * (N // 2 + 1), 1, N)``: cosines then minus sines."""
    time_index = torch.arange(window_samples, dtype=torch.float64)
    bins = torch.arange(window_samples // 2 + 1, dtype=torch.float64)
    window = torch.hann_window(window_samples, periodic=True, dtype=torch.float64)
    angle = 2.0 * math.pi * bins[:, None] * time_index[None, :] / window_samples
    basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window], dim=0)
    return basis.to(torch.float32).unsqueeze(1)


class LogMelFrontend(nn.Module):
    """Waveform ``(B, S)`` at 16 kHz -> normalised log-mel ``(B, n_mels, T)`` and mask ``(B, T)``.

    Normalisation: per utterance, subtract the per-band mean over valid frames and divide by
    one standard deviation over all valid (frame, band) cells, so relative band levels survive
    while the recording gain does not. Padded frames are set to 0.
    """

    basis: Tensor
    filterbank: Tensor

    def __init__(self, n_mels: int = N_MELS) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.n_bins = WINDOW_SAMPLES // 2 + 1
        self.register_buffer("basis", dft_basis(WINDOW_SAMPLES), persistent=False)
        filterbank = torchaudio.functional.melscale_fbanks(
            self.n_bins, 0.0, SAMPLING_RATE_HZ / 2, n_mels, SAMPLING_RATE_HZ
        )
        self.register_buffer("filterbank", filterbank, persistent=False)  # (bins, n_mels)

    @property
    def frame_hop_s(self) -> float:
        """Seconds between consecutive frames."""
        return HOP_SAMPLES / SAMPLING_RATE_HZ

    def mel_power(self, waveform: Tensor) -> Tensor:
        """Mel power spectrogram ``(B, n_mels, T)``, ``T = 1 + (S - 400) // 160``."""
        spectrum = nn.functional.conv1d(waveform.unsqueeze(1), self.basis, stride=HOP_SAMPLES)
        real, imaginary = spectrum[:, : self.n_bins], spectrum[:, self.n_bins :]
        power = real * real + imaginary * imaginary  # (B, bins, T)
        return torch.matmul(power.transpose(1, 2), self.filterbank).transpose(1, 2)

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Compute normalised log-mel features.

        Args:
            waveform: float32 ``(B, S)`` in [-1, 1]; ``S >= 400`` samples (25 ms).
            lengths: int64 ``(B,)`` valid samples per row.
        Returns:
            features ``(B, n_mels, T)`` and boolean mask ``(B, T)`` of valid frames.
        """
        log_mel = torch.log(self.mel_power(waveform) + LOG_FLOOR)
        mask = frame_mask(valid_frame_count(lengths), log_mel.shape[-1])
        return normalise_utterance(log_mel, mask), mask


def normalise_utterance(log_mel: Tensor, mask: Tensor) -> Tensor:
    """Per-utterance normalisation over valid frames only.

    Args:
        log_mel: ``(B, F, T)`` log-mel power.
        mask: boolean ``(B, T)``.
    Returns:
        ``(B, F, T)`` with per-band zero mean and unit global std on valid frames; 0 elsewhere.
    """
    weights = mask.unsqueeze(1).to(log_mel.dtype)
    count = weights.sum(dim=2, keepdim=True).clamp(min=1.0)
    mean = (log_mel * weights).sum(dim=2, keepdim=True) / count
    centred = (log_mel - mean) * weights
    variance = centred.pow(2).sum(dim=(1, 2), keepdim=True) / (count * log_mel.shape[1])
    return centred / torch.sqrt(variance + STD_FLOOR**2)
