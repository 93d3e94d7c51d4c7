"""The shared frame grid of every cue track: one frame per 10 ms, centred on sample ``k * hop``.

Every analysis (pitch, loudness, spectra, formants, intensity) cuts windows of its own length
around the same centres, so frame ``k`` of every track describes the same instant and one frame
mask selects the same region in all of them.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

HOP_S: Final[float] = 0.010
"""Frame step: the 10 ms of eGeMAPS (``frameStep = 0.010``, Eyben et al. 2016) and of Praat's
``To Pitch`` at a 75 Hz floor (0.75 / floor)."""


def hop_samples(sampling_rate_hz: int) -> int:
    """Samples per 10 ms frame step at ``sampling_rate_hz``."""
    return max(1, round(HOP_S * sampling_rate_hz))


def frame_count(n_samples: int, sampling_rate_hz: int) -> int:
    """Number of frames on the grid for a signal of ``n_samples`` samples (at least 1)."""
    return max(1, math.ceil(n_samples / hop_samples(sampling_rate_hz)))


def frame_times_s(n_frames: int, sampling_rate_hz: int) -> FloatArray:
    """Centre time in seconds of each frame, shape ``(n_frames,)``."""
    return np.arange(n_frames, dtype=np.float64) * hop_samples(sampling_rate_hz) / sampling_rate_hz


def frames_around_centres(signal: FloatArray, window_samples: int, hop: int) -> FloatArray:
    """Windows of ``window_samples`` samples centred on samples ``0, hop, 2 hop, ...``.

    Args:
        signal: shape ``(samples,)``.
        window_samples: window length in samples (>= 1).
        hop: frame step in samples.

    Returns:
        A read-only strided view of shape ``(frame_count, window_samples)``; samples before the
        start or after the end of ``signal`` are zeros.
    """
    n_frames = max(1, math.ceil(signal.shape[0] / hop))
    left = window_samples // 2
    right = window_samples + (n_frames - 1) * hop - left - signal.shape[0]
    padded = np.pad(signal, (left, max(0, right)))
    view = np.lib.stride_tricks.sliding_window_view(padded, window_samples)
    return view[: (n_frames - 1) * hop + 1 : hop]


def frame_mask_from_samples(sample_mask: BoolArray, n_frames: int, hop: int) -> BoolArray:
    """Frame-level mask: frame ``k`` is selected when the sample at its centre is.

    Args:
        sample_mask: boolean, shape ``(samples,)``.
        n_frames: frames on the grid.
        hop: frame step in samples.

    Returns:
        Boolean array of shape ``(n_frames,)``.
    """
    centres = np.minimum(np.arange(n_frames) * hop, sample_mask.shape[0] - 1)
    return np.asarray(sample_mask[centres], dtype=np.bool_)


def true_runs(flags: BoolArray) -> IntArray:
    """Start and stop (exclusive) index of each run of ``True``, shape ``(runs, 2)``."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges.reshape(-1, 2).astype(np.int64)
