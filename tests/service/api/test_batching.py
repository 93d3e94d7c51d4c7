"""Micro-batching over real HTTP: concurrent /predict requests share model calls of a model whose
rows are independent (the shipped compact model) and get exactly the answers they get alone; the
shipped default, whose dynamic int8 rows depend on the batch, answers them one call each, also
exactly as alone (real speech)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from prometheus_client.parser import text_string_to_metric_families

from service.api.app import create_app
from service.api.runners import build_runners
from service.config import REPOSITORY_ROOT, Settings
from service.inference.batcher import MicroBatcher
from service.inference.batching import DirectRunner
from service.inference.registry import load_registry
from service.metrics import ServiceMetrics
from tests.data_paths import ravdess_clip
from tests.service.api.conftest import LiveServer

CLIP_S = 2.5
CONCURRENT_REQUESTS = 6
RECORDINGS = ("01-01-01-01-01", "03-01-01-01-02", "04-01-01-01-03", "05-01-01-01-04",
              "06-01-01-01-05", "07-01-01-01-06")  # fmt: skip
"""RAVDESS emotion-intensity-statement-repetition-actor: six actors, six emotions."""
TOLERANCE = 1e-5
MERGED_MODEL = "ser-compact"
"""A shipped model whose rows are independent (float graph): the batcher merges its requests."""


@pytest.fixture(scope="module")
def batching_client() -> Iterator[httpx.Client]:
    """The shipped models, with a long wait so that concurrent requests surely meet."""
    settings = Settings(
        models_dir=REPOSITORY_ROOT / "models", log_json=False, redis_url=None, batch_wait_ms=250
    )
    with LiveServer(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def speech_wav(recording: str) -> bytes:
    """2.5 s of a RAVDESS recording (16 kHz) as 16-bit WAV; equal lengths: no row is padded."""
    signal, rate_hz = soundfile.read(ravdess_clip(f"03-01-{recording}.flac"), dtype="float32")
    buffer = io.BytesIO()
    soundfile.write(
        buffer, signal[: int(CLIP_S * rate_hz)], rate_hz, subtype="PCM_16", format="WAV"
    )
    return buffer.getvalue()


def predict(client: httpx.Client, data: bytes, model: str | None = None) -> dict[str, Any]:
    params = {"model": model} if model else {}
    response = client.post("/predict", files={"file": ("speech.wav", data)}, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def default_model(client: httpx.Client) -> tuple[str, str]:
    """``(name, version)`` of the served default model."""
    model = next(m for m in client.get("/models").json()["models"] if m["default"])
    return model["name"], model["version"]


def batch_sizes(client: httpx.Client, name: str) -> tuple[float, float]:
    """``(model calls, model calls with more than one segment)`` of model ``name``."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "ser_model_batch_segments":
            samples = [s for s in family.samples if s.labels.get("model") == name]
            count = next(s.value for s in samples if s.name.endswith("_count"))
            single = next(s.value for s in samples if s.labels.get("le") == "1.0")
            return count, count - single
    raise AssertionError("ser_model_batch_segments missing from /metrics")


def assert_same_answer(together: dict[str, Any], alone: dict[str, Any]) -> None:
    assert together["label"] == alone["label"]
    for field in ("probabilities", "distribution", "vad"):
        got, expected = together[field], alone[field]
        assert got.keys() == expected.keys()
        np.testing.assert_allclose(
            [got[key] for key in got], [expected[key] for key in got], atol=TOLERANCE
        )
    assert together["uncertainty"]["value"] == pytest.approx(
        alone["uncertainty"]["value"], abs=TOLERANCE
    )


def send_alone_then_together(
    client: httpx.Client, model: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The answers to the clips sent one at a time, then all at once."""
    clips = [speech_wav(recording) for recording in RECORDINGS[:CONCURRENT_REQUESTS]]
    alone = [predict(client, clip, model) for clip in clips]
    with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        together = list(pool.map(lambda clip: predict(client, clip, model), clips))
    for answer_together, answer_alone in zip(together, alone, strict=True):
        assert_same_answer(answer_together, answer_alone)
    assert len({answer["label"] for answer in alone}) > 1, "pick clips with different answers"
    return alone, together


def test_concurrent_requests_are_merged_and_answered_as_alone(
    batching_client: httpx.Client,
) -> None:
    calls_before, merged_before = batch_sizes(batching_client, MERGED_MODEL)
    assert merged_before == 0
    send_alone_then_together(batching_client, MERGED_MODEL)
    calls_after, merged_after = batch_sizes(batching_client, MERGED_MODEL)
    assert merged_after >= 1, "no model call held more than one request's segment"
    assert calls_after - calls_before < 2 * CONCURRENT_REQUESTS


def test_the_default_model_answers_each_request_alone_under_concurrency(
    batching_client: httpx.Client,
) -> None:
    name, _ = default_model(batching_client)
    calls_before, merged_before = batch_sizes(batching_client, name)
    send_alone_then_together(batching_client, None)
    calls_after, merged_after = batch_sizes(batching_client, name)
    assert merged_after == merged_before, "a row-dependent model must never be merged"
    assert calls_after - calls_before == 2 * CONCURRENT_REQUESTS


def test_batcher_metrics_are_exposed(batching_client: httpx.Client) -> None:
    predict(batching_client, speech_wav(RECORDINGS[0]))
    text = batching_client.get("/metrics").text
    model, version = default_model(batching_client)
    for name in (
        "ser_model_batch_segments_bucket",
        "ser_model_queue_wait_seconds_bucket",
        "ser_model_run_duration_seconds_count",
    ):
        assert f'{name}{{le="1.0",model="{model}",version="{version}"}}' in text or (
            f'{name}{{model="{model}",version="{version}"}}' in text
        ), name


def test_a_zero_wait_turns_micro_batching_off(models_dir: Path) -> None:
    registry = load_registry(models_dir)
    off = build_runners(
        registry, Settings(models_dir=models_dir, batch_wait_ms=0), ServiceMetrics()
    )
    on = build_runners(registry, Settings(models_dir=models_dir), ServiceMetrics())
    assert all(isinstance(runner, DirectRunner) for runner in off.values())
    assert all(isinstance(runner, MicroBatcher) for runner in on.values())
    assert set(on) == {model.key for model in registry}
