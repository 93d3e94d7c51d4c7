"""The benchmark clips: real speech from ../shared/data, concatenated to the lengths asked.

RAVDESS clips (16 kHz FLAC) are read in file-name order (which cycles through the actors),
their leading and trailing silence trimmed, and joined into one speech stream; a clip of
``d`` seconds is a slice of that stream, and the rows of a batch are consecutive slices, so
every model and the service see the same audio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLING_RATE_HZ = 16_000
FRAME_S = 0.02
SILENCE_BELOW_PEAK_DB = 35.0
"""Frames quieter than the clip's loudest frame by this much, at either end, are trimmed."""


@dataclass(frozen=True)
class Clip:
    """One benchmark clip: mono float32 ``(samples,)`` at 16 kHz and where it came from."""

    duration_s: float
    signal: np.ndarray
    sources: tuple[str, ...]

    def flac_bytes(self) -> bytes:
        """The clip as a 16-bit FLAC file (what the HTTP benchmark uploads)."""
        buffer = io.BytesIO()
        sf.write(buffer, self.signal, SAMPLING_RATE_HZ, format="FLAC", subtype="PCM_16")
        return buffer.getvalue()


def ravdess_files(data_dir: Path) -> list[Path]:
    """Every RAVDESS FLAC under ``data_dir/ravdess/audio``, in name order.

    Raises:
        FileNotFoundError: the corpus is not there (set ``SER_DATA_DIR``).
    """
    files = sorted((data_dir / "ravdess" / "audio").glob("*.flac"))
    if not files:
        raise FileNotFoundError(
            f"no RAVDESS FLAC files under {data_dir / 'ravdess' / 'audio'}; "
            "set SER_DATA_DIR to the shared data directory"
        )
    return files


def trim_silence(signal: np.ndarray, sampling_rate_hz: int = SAMPLING_RATE_HZ) -> np.ndarray:
    """``signal`` without the quiet frames at its start and end (see ``SILENCE_BELOW_PEAK_DB``)."""
    frame = int(FRAME_S * sampling_rate_hz)
    count = signal.size // frame
    if count == 0:
        return signal
    rms = np.sqrt(np.mean(signal[: count * frame].reshape(count, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-SILENCE_BELOW_PEAK_DB / 20))
    return signal[loud[0] * frame : (loud[-1] + 1) * frame]


def read_speech(path: Path) -> np.ndarray:
    """A trimmed mono float32 clip at 16 kHz.

    Raises:
        ValueError: the file is not 16 kHz.
    """
    signal, sampling_rate_hz = sf.read(path, dtype="float32", always_2d=True)
    if sampling_rate_hz != SAMPLING_RATE_HZ:
        raise ValueError(f"{path}: {sampling_rate_hz} Hz, expected {SAMPLING_RATE_HZ}")
    return trim_silence(signal.mean(axis=1).astype(np.float32))


def speech_stream(files: list[Path], min_samples: int) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Trimmed clips joined until ``min_samples``; also (file name, start sample) per clip.

    Raises:
        ValueError: all files together are shorter than ``min_samples``.
    """
    pieces: list[np.ndarray] = []
    starts: list[tuple[str, int]] = []
    total = 0
    for path in files:
        piece = read_speech(path)
        starts.append((path.name, total))
        pieces.append(piece)
        total += piece.size
        if total >= min_samples:
            return np.concatenate(pieces), starts
    raise ValueError(f"the corpus holds {total} samples of speech, fewer than {min_samples}")


def make_clips(data_dir: Path, rows_by_duration_s: dict[float, int]) -> dict[float, list[Clip]]:
    """Different clips of every duration (as many as its rows), cut from one speech stream.

    Row 0 of each duration is the clip of the batch-1 and HTTP cases; rows of a duration are
    consecutive, non-overlapping slices.
    """
    needed_samples = max(
        int(duration_s * SAMPLING_RATE_HZ) * rows for duration_s, rows in rows_by_duration_s.items()
    )
    stream, starts = speech_stream(ravdess_files(data_dir), needed_samples)
    clips: dict[float, list[Clip]] = {}
    for duration_s, rows in rows_by_duration_s.items():
        samples = int(duration_s * SAMPLING_RATE_HZ)
        clips[duration_s] = [
            _slice(stream, starts, duration_s, row * samples, samples) for row in range(rows)
        ]
    return clips


def _slice(
    stream: np.ndarray, starts: list[tuple[str, int]], duration_s: float, first: int, count: int
) -> Clip:
    sources = tuple(
        name
        for index, (name, start) in enumerate(starts)
        if start < first + count and _end(starts, index, stream.size) > first
    )
    return Clip(duration_s, np.ascontiguousarray(stream[first : first + count]), sources)


def _end(starts: list[tuple[str, int]], index: int, total: int) -> int:
    return starts[index + 1][1] if index + 1 < len(starts) else total
