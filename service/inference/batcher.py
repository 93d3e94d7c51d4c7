"""Micro-batching: the segments of concurrent requests gathered into one model call.

Request threads (the API's worker threads, which run the synchronous pipeline) enter a slot
when they start, hand their segments to the slot once they are cut, and block until their rows
come back. One inference thread per model takes what is queued and, while the batch has room
and other requests are still being decoded (entered a slot, not yet submitted), waits for them
up to ``wait_s`` after the oldest queued segment arrived. It then pads the pieces into one
batch (the model's ``lengths`` input says where each row ends), runs the model once and hands
each request its rows. Nothing waits when no other request is on its way, so a lone request
pays no delay.

A model without a ``lengths`` input only gets pieces of equal length in one call, so padding
never changes its answers. A model whose rows depend on each other (``OnnxModel.rows_independent``
is false: a dynamically quantised int8 graph measures its activation ranges over the whole
batch) never gets two requests in one call, and nothing waits for it: each request's answer
must not depend on who else is asking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from service.inference.batching import BatchLimit, ModelSlot, pad_batch
from service.inference.session import ModelOutputs, OnnxModel

CLOSE_TIMEOUT_S: Final = 10.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchObservation:
    """One model call of the batcher.

    ``segments``: rows of the call; ``queue_wait_s``: per queued item (a request's chunk), the
    seconds from its submission to the start of the call; ``run_s``: the model call itself.
    """

    segments: int
    queue_wait_s: tuple[float, ...]
    run_s: float


BatchObserver = Callable[[BatchObservation], None]


@dataclass
class _Item:
    """As many pieces of one request as one call admits, and where their rows go."""

    pieces: Sequence[np.ndarray]
    future: Future[ModelOutputs] = field(default_factory=Future)
    enqueued_s: float = field(default_factory=time.perf_counter)

    @property
    def longest_samples(self) -> int:
        """Samples of the longest piece (what the padded batch's rows grow to)."""
        return max(piece.size for piece in self.pieces)


class MicroBatcher:
    """One inference thread for ``model``; see the module docstring.

    Args:
        max_batch_segments: most rows per model call (``SER_MAX_BATCH_SEGMENTS``).
        wait_s: longest wait for more requests after the oldest queued one (``SER_BATCH_WAIT_MS``).
        observer: called on the inference thread after every model call (metrics).
        max_batch_audio_s: most audio per call, counted padded (rows x longest row, seconds;
            ``SER_MAX_BATCH_AUDIO_S``); ``None``: rows only.
    """

    def __init__(
        self,
        model: OnnxModel,
        max_batch_segments: int,
        wait_s: float,
        observer: BatchObserver | None = None,
        max_batch_audio_s: float | None = None,
    ) -> None:
        self.model = model
        self._limit = BatchLimit.of(model, max_batch_segments, max_batch_audio_s)
        self._wait_s = wait_s
        self._observer = observer
        self._equal_lengths_only = model.manifest.inputs.lengths is None
        self._merges_requests = model.rows_independent
        self._condition = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._queued_segments = 0
        self._upstream = 0  # requests in a slot that have not submitted yet
        self._closed = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def slot(self) -> Iterator[ModelSlot]:
        """Counts the request as on its way to the model until it submits or leaves."""
        slot = _BatcherSlot(self)
        with self._condition:
            self._upstream += 1
        try:
            yield slot
        finally:
            if not slot.submitted:
                with self._condition:
                    self._upstream -= 1
                    self._condition.notify_all()

    def close(self) -> None:
        """Run what is queued, then stop the inference thread (later submissions raise)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=CLOSE_TIMEOUT_S)

    def submit(self, pieces: Sequence[np.ndarray], *, counted: bool) -> list[ModelOutputs]:
        """Queue ``pieces`` (in chunks that each fit one call) and wait for the rows.

        ``counted``: the caller is in a slot that still counts it as on its way.

        Raises:
            RuntimeError: the batcher is closed.
            Exception: whatever the model call raised.
        """
        items = [_Item(chunk) for chunk in self._limit.chunks(pieces)]
        with self._condition:
            if counted:
                self._upstream -= 1
            if self._closed:
                raise RuntimeError(f"the micro-batcher of {self.model.key} is closed")
            self._queue.extend(items)
            self._queued_segments += len(pieces)
            self._start_thread()
            self._condition.notify_all()
        return [item.future.result() for item in items]

    def _start_thread(self) -> None:
        if self._thread is None:
            name = f"ser-inference-{self.model.key}"
            self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    def _next_batch(self) -> list[_Item] | None:
        """Block until there is work; ``None`` once closed and drained."""
        with self._condition:
            while not self._queue and not self._closed:
                self._condition.wait()
            if not self._queue:
                return None
            deadline_s = self._queue[0].enqueued_s + self._wait_s
            while self._worth_waiting():
                remaining_s = deadline_s - time.perf_counter()
                if remaining_s <= 0:
                    break
                self._condition.wait(remaining_s)
            return self._take()

    def _worth_waiting(self) -> bool:
        """More requests are on their way and the batch has room (call with the lock)."""
        return (
            self._merges_requests
            and self._upstream > 0
            and self._queued_segments < self._limit.max_rows
        )

    def _take(self) -> list[_Item]:
        """Queued items in order while they fit one call (call with the lock)."""
        batch = [self._queue.popleft()]
        rows = len(batch[0].pieces)
        longest = batch[0].longest_samples
        while self._queue and self._fits(batch, self._queue[0], rows, longest):
            batch.append(self._queue.popleft())
            rows += len(batch[-1].pieces)
            longest = max(longest, batch[-1].longest_samples)
        self._queued_segments -= rows
        return batch

    def _fits(self, batch: list[_Item], item: _Item, rows: int, longest: int) -> bool:
        if not self._merges_requests:
            return False
        if not self._limit.admits(rows + len(item.pieces), max(longest, item.longest_samples)):
            return False
        if not self._equal_lengths_only:
            return True
        size = batch[0].pieces[0].size
        return all(piece.size == size for piece in (*batch[0].pieces, *item.pieces))

    def _run(self, batch: list[_Item]) -> None:
        pieces = [piece for item in batch for piece in item.pieces]
        start_s = time.perf_counter()
        try:
            outputs = self.model.run(*pad_batch(pieces))
        except Exception as exc:  # every waiting request gets the model's error
            for item in batch:
                item.future.set_exception(exc)
            return
        run_s = time.perf_counter() - start_s
        first = 0
        for item in batch:
            item.future.set_result(outputs.rows(first, first + len(item.pieces)))
            first += len(item.pieces)
        waits_s = tuple(start_s - item.enqueued_s for item in batch)
        self._observe(BatchObservation(len(pieces), waits_s, run_s))

    def _observe(self, observation: BatchObservation) -> None:
        if self._observer is None:
            return
        try:
            self._observer(observation)
        except Exception:
            _log.warning("batch observer failed", exc_info=True)


class _BatcherSlot:
    """A request's slot: its first submission stops counting it as on its way."""

    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher
        self.submitted = False

    def run(self, pieces: Sequence[np.ndarray]) -> list[ModelOutputs]:
        counted = not self.submitted
        self.submitted = True
        return self._batcher.submit(pieces, counted=counted)
