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


class DirectRunner:
    """Runs the model in the calling thread, ``max_batch_segments`` pieces per call."""

    def __init__(self, model: OnnxModel, max_batch_segments: int) -> None:
        self._model = model
        self._max_batch_segments = max_batch_segments

    @contextmanager
    def slot(self) -> Iterator[ModelSlot]:
        yield self

    def run(self, pieces: Sequence[np.ndarray]) -> list[ModelOutputs]:
        step = self._max_batch_segments
        return [
            self._model.run(*pad_batch(pieces[first : first + step]))
            for first in range(0, len(pieces), step)
        ]


def pad_batch(pieces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad 1-D float32 pieces into ``(batch, max_samples)`` plus int64 ``(batch,)`` lengths."""
    lengths = np.array([piece.size for piece in pieces], dtype=np.int64)
    waveforms = np.zeros((len(pieces), int(lengths.max())), dtype=np.float32)
    for row, piece in enumerate(pieces):
        waveforms[row, : piece.size] = piece
    return waveforms, lengths
