"""How segments reach the model: directly, or micro-batched with other requests' segments.

The pipeline asks a :class:`SegmentRunner` for a *slot* when a request starts, and hands the
slot the request's segments once they are cut. Two runners keep the same contract:

- :class:`DirectRunner` runs the model in the calling thread (the batch worker, tests, and the
  API when ``SER_BATCH_WAIT_MS=0``).
- :class:`service.inference.batcher.MicroBatcher` queues the segments for one inference thread
  that runs the segments of several concurrent requests in one padded model call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.inference.session import ModelOutputs, OnnxModel


class ModelSlot(Protocol):
    """One request's way to the model."""

    def run(self, pieces: Sequence[np.ndarray]) -> list[ModelOutputs]:
        """Model outputs for float32 ``(samples,)`` pieces at the model's rate.

        Returns one or more row groups that together hold one row per piece, in order
        (``attention`` rows may carry padded frames past a piece's end).
        """
        ...


class SegmentRunner(Protocol):
    """Gives each request a :class:`ModelSlot` for the time it is being analysed."""

    def slot(self) -> AbstractContextManager[ModelSlot]:
        """Enter when a request starts (before decoding), leave when it is done."""
        ...


@dataclass(frozen=True)
class BatchLimit:
    """How much one model call may hold: at most ``max_rows`` rows, and at most
    ``max_padded_samples`` samples in the zero-padded ``(rows, longest row)`` batch (``None``:
    no such cap). A single row is always admitted, however long.

    The padded size is what ONNX Runtime's buffers for a call grow with (and keep for the next
    call), so the audio cap bounds memory whatever the window length or clip mix.
    """

    max_rows: int
    max_padded_samples: int | None = None

    @classmethod
    def of(cls, model: OnnxModel, max_rows: int, max_audio_s: float | None) -> BatchLimit:
        """The limit for ``model``: ``max_audio_s`` seconds at its sampling rate (``None`` or
        0: no audio cap)."""
        if not max_audio_s:
            return cls(max_rows)
        return cls(max_rows, round(max_audio_s * model.manifest.sampling_rate_hz))

    def admits(self, rows: int, longest_samples: int) -> bool:
        """Whether ``rows`` rows padded to ``longest_samples`` fit one call."""
        if rows <= 1:
            return True
        if rows > self.max_rows:
            return False
        return self.max_padded_samples is None or rows * longest_samples <= self.max_padded_samples

    def chunks(self, pieces: Sequence[np.ndarray]) -> list[Sequence[np.ndarray]]:
        """``pieces`` split, in order, into consecutive runs that each fit one call."""
        runs: list[Sequence[np.ndarray]] = []
        run: list[np.ndarray] = []
        longest = 0
        for piece in pieces:
            if run and not self.admits(len(run) + 1, max(longest, piece.size)):
                runs.append(run)
                run, longest = [], 0
            run.append(piece)
            longest = max(longest, piece.size)
        if run:
            runs.append(run)
        return runs


class DirectRunner:
    """Runs the model in the calling thread, as many pieces per call as ``limit`` admits."""

    def __init__(
        self, model: OnnxModel, max_batch_segments: int, max_batch_audio_s: float | None = None
    ) -> None:
        self._model = model
        self._limit = BatchLimit.of(model, max_batch_segments, max_batch_audio_s)

    @contextmanager
    def slot(self) -> Iterator[ModelSlot]:
        yield self

    def run(self, pieces: Sequence[np.ndarray]) -> list[ModelOutputs]:
        return [self._model.run(*pad_batch(chunk)) for chunk in self._limit.chunks(pieces)]


def pad_batch(pieces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad 1-D float32 pieces into ``(batch, max_samples)`` plus int64 ``(batch,)`` lengths."""
    lengths = np.array([piece.size for piece in pieces], dtype=np.int64)
    waveforms = np.zeros((len(pieces), int(lengths.max())), dtype=np.float32)
    for row, piece in enumerate(pieces):
        waveforms[row, : piece.size] = piece
    return waveforms, lengths
