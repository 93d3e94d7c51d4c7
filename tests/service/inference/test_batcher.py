"""The micro-batcher merges concurrent requests into one model call and routes the rows back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydantic
import pytest

from service.config import Settings
from service.inference.batcher import BatchObservation, MicroBatcher
from service.inference.batching import BatchLimit, DirectRunner, pad_batch
from service.inference.session import ModelOutputs, OnnxModel
from tests.onnx_factory import TinyModelSpec, build_model

SAMPLING_RATE_HZ = 16_000
LONG_WAIT_S = 60.0
"""Far longer than any test: a batch that waited for it would time the test out."""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    directory = tmp_path_factory.mktemp("models")
    return OnnxModel(build_model(directory, TinyModelSpec(ensemble_members=3)))


@pytest.fixture()
def observations() -> list[BatchObservation]:
    return []


@pytest.fixture()
def batcher(model: OnnxModel, observations: list[BatchObservation]) -> Iterator[MicroBatcher]:
    batcher = MicroBatcher(model, 8, LONG_WAIT_S, observations.append)
    yield batcher
    batcher.close()


def pieces(count: int, samples: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(samples)).astype(np.float32) for _ in range(count)]


def serve_together(
    batcher: MicroBatcher, requests: list[list[np.ndarray]]
) -> list[list[ModelOutputs]]:
    """Each request from its own thread; every request is on its way before any submits."""
    all_entered = threading.Barrier(len(requests))

    def serve(request: list[np.ndarray]) -> list[ModelOutputs]:
        with batcher.slot() as slot:
            all_entered.wait()
            return slot.run(request)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(serve, requests))


def assert_same_rows(got: ModelOutputs, expected: ModelOutputs) -> None:
    np.testing.assert_allclose(got.categorical_logits, expected.categorical_logits, atol=1e-6)
    assert got.affect is not None and expected.affect is not None
    np.testing.assert_allclose(got.affect, expected.affect, atol=1e-6)
    assert got.ensemble_logits is not None and expected.ensemble_logits is not None
    np.testing.assert_allclose(got.ensemble_logits, expected.ensemble_logits, atol=1e-6)


def test_concurrent_requests_share_one_call_and_get_their_own_rows(
    model: OnnxModel, batcher: MicroBatcher, observations: list[BatchObservation]
) -> None:
    requests = [pieces(1, SAMPLING_RATE_HZ, seed) for seed in range(3)] + [pieces(2, 16_000, 9)]
    answers = serve_together(batcher, requests)
    assert [observation.segments for observation in observations] == [5]
    for request, answer in zip(requests, answers, strict=True):
        assert len(answer) == 1 and answer[0].categorical_logits.shape[0] == len(request)
        assert_same_rows(answer[0], model.run(*pad_batch(request)))


def test_a_lone_request_does_not_wait_for_others(
    batcher: MicroBatcher, observations: list[BatchObservation]
) -> None:
    with batcher.slot() as slot:
        slot.run(pieces(1, 8000, 0))
    assert len(observations) == 1
    assert observations[0].queue_wait_s[0] < LONG_WAIT_S


def test_a_request_that_leaves_without_submitting_stops_the_wait(
    batcher: MicroBatcher, observations: list[BatchObservation]
) -> None:
    leaving, left = threading.Event(), threading.Event()

    def fail_before_the_model() -> None:
        with pytest.raises(ValueError, match="bad audio"), batcher.slot():
            leaving.wait()
            raise ValueError("bad audio")
        left.set()

    thread = threading.Thread(target=fail_before_the_model)
    thread.start()
    with batcher.slot() as slot:
        threading.Timer(0.05, leaving.set).start()
        answer = slot.run(pieces(1, 8000, 1))
    thread.join()
    assert left.is_set() and answer[0].categorical_logits.shape[0] == 1
    assert [observation.segments for observation in observations] == [1]


def test_long_requests_are_split_into_calls_of_at_most_max_segments(
    model: OnnxModel, observations: list[BatchObservation]
) -> None:
    request = pieces(11, 4000, 3)
    batcher = MicroBatcher(model, 4, LONG_WAIT_S, observations.append)
    try:
        with batcher.slot() as slot:
            groups = slot.run(request)
    finally:
        batcher.close()
    direct = DirectRunner(model, 4).run(request)
    assert [group.categorical_logits.shape[0] for group in groups] == [4, 4, 3]
    assert sorted(observation.segments for observation in observations) == [3, 4, 4]
    for got, expected in zip(groups, direct, strict=True):
        assert_same_rows(got, expected)


def test_a_model_failure_reaches_every_request_of_the_batch(
    model: OnnxModel, monkeypatch: pytest.MonkeyPatch, batcher: MicroBatcher
) -> None:
    def broken_run(waveforms: np.ndarray, lengths: np.ndarray) -> ModelOutputs:
        raise RuntimeError("onnxruntime failed")

    monkeypatch.setattr(model, "run", broken_run)
    with pytest.raises(RuntimeError, match="onnxruntime failed"), batcher.slot() as slot:
        slot.run(pieces(1, 8000, 2))


def test_a_closed_batcher_refuses_work(batcher: MicroBatcher) -> None:
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"), batcher.slot() as slot:
        slot.run(pieces(1, 8000, 4))


def test_rows_of_model_outputs_are_views(model: OnnxModel) -> None:
    outputs = model.run(*pad_batch(pieces(3, 8000, 5)))
    middle = outputs.rows(1, 2)
    assert middle.categorical_logits.shape[0] == 1
    assert np.shares_memory(middle.categorical_logits, outputs.categorical_logits)


def test_a_model_whose_rows_depend_on_each_other_gets_one_request_per_call(
    tmp_path: Path, observations: list[BatchObservation]
) -> None:
    """A dynamically quantised graph measures its activation ranges over the whole batch, so a
    request batched with another would get another answer: such a model is never merged."""
    row_dependent = OnnxModel(build_model(tmp_path / "model"))
    row_dependent.rows_independent = False
    batcher = MicroBatcher(row_dependent, 8, LONG_WAIT_S, observations.append)
    requests = [pieces(1, SAMPLING_RATE_HZ, seed) for seed in range(3)]
    try:
        answers = serve_together(batcher, requests)
    finally:
        batcher.close()
    assert [observation.segments for observation in observations] == [1, 1, 1]
    assert all(wait_s < LONG_WAIT_S for o in observations for wait_s in o.queue_wait_s)
    for request, answer in zip(requests, answers, strict=True):
        np.testing.assert_array_equal(
            answer[0].categorical_logits, row_dependent.run(*pad_batch(request)).categorical_logits
        )


def test_the_audio_cap_counts_the_padded_batch() -> None:
    limit = BatchLimit(max_rows=8, max_padded_samples=4 * SAMPLING_RATE_HZ)
    one_s, three_s = np.zeros(SAMPLING_RATE_HZ), np.zeros(3 * SAMPLING_RATE_HZ)
    assert limit.admits(4, SAMPLING_RATE_HZ) and not limit.admits(5, SAMPLING_RATE_HZ)
    assert limit.admits(1, 30 * SAMPLING_RATE_HZ), "a single row always runs"
    # 1 s + 3 s pads to 2 x 3 s: over 4 s, so the 3 s piece starts a call of its own
    assert [len(c) for c in limit.chunks([one_s, one_s, three_s, one_s])] == [2, 1, 1]
    assert [len(c) for c in limit.chunks([one_s] * 9)] == [4, 4, 1]
    assert BatchLimit(max_rows=3).chunks([three_s] * 7) == [[three_s] * 3] * 2 + [[three_s]]


def test_a_long_request_is_split_by_audio_as_well_as_rows(
    model: OnnxModel, observations: list[BatchObservation]
) -> None:
    request = pieces(5, 3 * SAMPLING_RATE_HZ, 6)  # five 3 s windows, 6 s of audio per call
    batcher = MicroBatcher(model, 8, LONG_WAIT_S, observations.append, max_batch_audio_s=6.0)
    try:
        with batcher.slot() as slot:
            groups = slot.run(request)
    finally:
        batcher.close()
    assert [group.categorical_logits.shape[0] for group in groups] == [2, 2, 1]
    direct = DirectRunner(model, 8, max_batch_audio_s=6.0).run(request)
    assert [group.categorical_logits.shape[0] for group in direct] == [2, 2, 1]
    for got, expected in zip(groups, direct, strict=True):
        assert_same_rows(got, expected)


def test_concurrent_requests_are_merged_only_within_the_audio_cap(
    model: OnnxModel, observations: list[BatchObservation]
) -> None:
    batcher = MicroBatcher(model, 8, LONG_WAIT_S, observations.append, max_batch_audio_s=3.0)
    requests = [pieces(1, SAMPLING_RATE_HZ, seed) for seed in range(5)]
    try:
        answers = serve_together(batcher, requests)
    finally:
        batcher.close()
    assert all(observation.segments <= 3 for observation in observations)
    assert sum(observation.segments for observation in observations) == len(requests)
    for request, answer in zip(requests, answers, strict=True):
        assert_same_rows(answer[0], model.run(*pad_batch(request)))


def test_the_audio_cap_setting_is_validated_and_zero_turns_it_off(
    model: OnnxModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SER_MAX_BATCH_AUDIO_S", "-1")
    with pytest.raises(pydantic.ValidationError, match="max_batch_audio_s"):
        Settings()
    monkeypatch.setenv("SER_MAX_BATCH_AUDIO_S", "0")
    assert BatchLimit.of(model, 8, Settings().max_batch_audio_s) == BatchLimit(8)
    monkeypatch.delenv("SER_MAX_BATCH_AUDIO_S")
    assert BatchLimit.of(model, 8, Settings().max_batch_audio_s) == BatchLimit(8, 12 * 16_000)
