"""Whisper's log-mel front end in PyTorch, for variable-length padded batches.

Parameters are Whisper's (Radford et al. 2022, "Robust Speech Recognition via Large-Scale
Weak Supervision", section 2.2, and the defaults of its ``audio.py``): 16 kHz input, 25 ms
Hann window (``n_fft`` 400, periodic), 10 ms hop (160 samples), centred frames with reflect
padding, power spectrum, 80 mel bins from 0 to 8 kHz on the Slaney mel scale with Slaney
area normalisation (librosa's default filterbank, which Whisper ships as
``mel_filters.npz``), the last STFT frame dropped, ``log10`` of the power clamped at
``1e-10``, floored at ``max - 8`` and scaled by ``(x + 4) / 4``.

Differences from Whisper, on purpose:

- no padding to 30 s: a clip of ``n`` samples gives ``n // 160`` frames;
- in a zero-padded batch every row is reflect-padded at its own end (as if alone) and
  frames past a row's length are set to 0, so a row's valid frames equal those of the
  same clip computed alone;
- the ``max - 8`` floor uses each row's maximum over its valid frames only.

The module exports to ONNX with ``torch.onnx.export(..., dynamo=True)``.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

SAMPLING_RATE_HZ = 16_000
N_FFT = 400
HOP_SAMPLES = 160
N_MELS = 80
LOG_FLOOR_POWER = 1e-10
DYNAMIC_RANGE_LOG10 = 8.0


def slaney_mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sampling_rate_hz: int = SAMPLING_RATE_HZ
) -> Tensor:
    """Triangular mel filters on the Slaney scale with Slaney area normalisation.

    Returns:
        float32 ``(n_fft // 2 + 1, n_mels)``: power spectrum bin -> mel bin weights.
    """
    fbank: Tensor = torchaudio.functional.melscale_fbanks(
        n_freqs=n_fft // 2 + 1,
        f_min=0.0,
        f_max=sampling_rate_hz / 2,
        n_mels=n_mels,
        sample_rate=sampling_rate_hz,
        norm="slaney",
        mel_scale="slaney",
    )
    return fbank.to(torch.float32)


def frame_counts(lengths: Tensor) -> Tensor:
    """Number of log-mel frames of clips with ``lengths`` samples: ``lengths // 160``."""
    return torch.div(lengths, HOP_SAMPLES, rounding_mode="floor")


def reflect_pad_rows(waveform: Tensor, lengths: Tensor, pad: int) -> Tensor:
    """Reflect-pad each row by ``pad`` samples at both ends of its own valid part.

    Args:
        waveform: float32 ``(B, S)``, rows zero-padded after ``lengths``.
        lengths: int64 ``(B,)``, valid samples per row (clamped to ``[1, S]``).
        pad: samples added on each side.

    Returns:
        float32 ``(B, S + 2 * pad)``; sample ``j`` of row ``b`` is the original sample
        ``reflect(j - pad)`` about 0 and ``lengths[b] - 1``. Positions that lie past the
        reflected tail repeat edge samples; they only feed frames that are masked.
    """
    num_samples = waveform.shape[1]
    last = (lengths.clamp(min=1, max=num_samples) - 1).unsqueeze(1)
    position = torch.arange(num_samples + 2 * pad, device=waveform.device).unsqueeze(0) - pad
    mirrored = torch.where(position > last, 2 * last - position, position).abs()
    index = torch.minimum(mirrored, last)
    return torch.gather(waveform, 1, index)


class WhisperLogMel(nn.Module):
    """Waveform ``(B, S)`` at 16 kHz -> Whisper log-mel features ``(B, 80, S // 160)``."""

    dft_basis: Tensor
    mel_fbank: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dft_basis", windowed_dft_basis(), persistent=False)
        self.register_buffer("mel_fbank", slaney_mel_filterbank(), persistent=False)

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Compute scaled log-mel features.

        Args:
            waveform: float32 ``(B, S)``, mono speech in [-1, 1] at 16 kHz, zero-padded.
            lengths: int64 ``(B,)``, valid samples per row.

        Returns:
            ``features``: float32 ``(B, 80, S // 160)``, 0 on frames past a row's end;
            ``frame_lengths``: int64 ``(B,)``, valid frames per row (``lengths // 160``).
        """
        log_mel = self.log10_mel(waveform, lengths)
        frame_lengths = frame_counts(lengths.clamp(max=waveform.shape[1]))
        valid = torch.arange(log_mel.shape[1], device=waveform.device) < frame_lengths[:, None]
        scaled = scale_log_mel(log_mel, valid)
        return scaled.transpose(1, 2), frame_lengths

    def log10_mel(self, waveform: Tensor, lengths: Tensor) -> Tensor:
        """``log10`` of the mel power, float32 ``(B, S // 160, 80)`` (frames first)."""
        padded = reflect_pad_rows(waveform, lengths, N_FFT // 2)
        power = self.power_spectrum(padded)[:, :-1]  # Whisper drops the last frame
        mel = torch.matmul(power, self.mel_fbank)
        return torch.clamp(mel, min=LOG_FLOOR_POWER).log10()

    def power_spectrum(self, padded: Tensor) -> Tensor:
        """Power spectrum of Hann-windowed 400-sample frames every 160 samples.

        Same values as ``torch.stft(padded, 400, 160, window, center=False).abs() ** 2``
        (checked by the tests), computed as a strided convolution with a windowed DFT
        basis: ONNX Runtime's STFT for a 400-point (not power of two) FFT was off by up
        to 0.07 in log10 mel power on quiet bins, a GEMM is exact to float32 rounding.

        Args:
            padded: float32 ``(B, N)``, already padded by 200 samples at each end.

        Returns:
            float32 ``(B, (N - 400) // 160 + 1, 201)``.
        """
        parts = F.conv1d(padded.unsqueeze(1), self.dft_basis, stride=HOP_SAMPLES)
        real, imag = parts.transpose(1, 2).chunk(2, dim=-1)
        return real.pow(2) + imag.pow(2)


def windowed_dft_basis(n_fft: int = N_FFT) -> Tensor:
    """Hann-windowed DFT basis as conv weights, float32 ``(2 * (n_fft // 2 + 1), 1, n_fft)``.

    Rows ``[0, n_fft // 2]`` give the real part of bins 0..n_fft/2, the rest the imaginary
    part (sign dropped, as only the power is used). Built in float64, then rounded.
    """
    window = torch.hann_window(n_fft, dtype=torch.float64)
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(1)
    phase = 2 * math.pi * bins * torch.arange(n_fft, dtype=torch.float64) / n_fft
    basis = torch.cat([torch.cos(phase), torch.sin(phase)]) * window
    return basis.unsqueeze(1).to(torch.float32)


def scale_log_mel(log_mel: Tensor, valid: Tensor) -> Tensor:
    """Floor at each row's valid maximum minus 8, scale by ``(x + 4) / 4``, zero padding.

    Args:
        log_mel: float32 ``(B, F, 80)``, ``log10`` mel power.
        valid: bool ``(B, F)``, True on a row's valid frames.

    Returns:
        float32 ``(B, F, 80)``.
    """
    mask = valid.unsqueeze(-1)
    row_max = log_mel.masked_fill(~mask, float("-inf")).amax(dim=(1, 2), keepdim=True)
    floored = torch.maximum(log_mel, row_max - DYNAMIC_RANGE_LOG10)
    return ((floored + 4.0) / 4.0).masked_fill(~mask, 0.0)
