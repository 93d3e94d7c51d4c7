"""Overload over real HTTP: a concurrency limit with a bounded wait queue answers
``503 overloaded`` with ``Retry-After``; a request deadline answers ``503 request_timeout``;
probes and metrics are never limited. Slots are held by deliberately slow uploads."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.app import create_app
from service.config import Settings
from tests.service.api.conftest import LiveServer, real_speech_wav
from tests.service.api.slow_upload import SlowUpload

PROBLEM = "application/problem+json"
WAIT_TIMEOUT_S = 15.0
BURST = 10
Answer = tuple[int, float, httpx.Response]


def limited_server(models_dir: Path, **limits: Any) -> LiveServer:
    settings = Settings(models_dir=models_dir, default_model="tiny", log_json=False, **limits)
    return LiveServer(create_app(settings))


def metric(client: httpx.Client, sample: str) -> float:
    """The value of one sample line of ``/metrics`` (0 when it is not there yet)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def wait_for_metric(client: httpx.Client, sample: str, value: float) -> None:
    deadline_s = time.monotonic() + WAIT_TIMEOUT_S
    while metric(client, sample) != value:
        assert time.monotonic() < deadline_s, f"{sample} never reached {value}"
        time.sleep(0.02)


def hold_slots(client: httpx.Client, base_url: str, count: int) -> list[SlowUpload]:
    """``count`` half-sent uploads, each admitted (holding a slot) before the next starts."""
    holders = []
    for n in range(1, count + 1):
        holders.append(SlowUpload(base_url, "/predict", real_speech_wav()).start())
        wait_for_metric(client, "ser_admission_in_flight", n)
    return holders


def wait_for_answers(futures: list[Future[Answer]], count: int) -> list[Answer]:
    """The answers of the first ``count`` requests to end (the others are still waiting)."""
    deadline_s = time.monotonic() + WAIT_TIMEOUT_S
    while sum(future.done() for future in futures) < count:
        assert time.monotonic() < deadline_s, f"fewer than {count} requests ended"
        time.sleep(0.02)
    return [future.result() for future in futures if future.done()]


def assert_overloaded(response: httpx.Response, retry_after_s: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == retry_after_s
    assert response.json()["code"] == "overloaded"


@pytest.fixture()
def speech() -> bytes:
    return real_speech_wav()


@pytest.fixture()
def small_server(models_dir: Path) -> Iterator[str]:
    """2 slots, 2 waiting places, a long queue timeout (5 s)."""
    with limited_server(
        models_dir, max_concurrent_requests=2, max_queued_requests=2, queue_timeout_s=5.0
    ) as url:
        yield url


def test_a_burst_beyond_slots_and_queue_is_refused_at_once(
    small_server: str, speech: bytes
) -> None:
    with httpx.Client(base_url=small_server, timeout=30.0) as client:
        holders = hold_slots(client, small_server, 2)

        def post(_: int) -> Answer:
            start_s = time.monotonic()
            with httpx.Client(base_url=small_server, timeout=30.0) as own:
                response = own.post("/predict", files={"file": ("clip.wav", speech)})
            return response.status_code, time.monotonic() - start_s, response

        with ThreadPoolExecutor(BURST) as pool:
            burst = [pool.submit(post, n) for n in range(BURST)]
            wait_for_metric(client, "ser_admission_queued", 2)
            assert client.get("/healthz").status_code == 200  # probes are never limited
            assert client.get("/readyz").status_code == 200
            refused = wait_for_answers(burst, BURST - 2)
            for _, elapsed_s, response in refused:
                assert_overloaded(response, "5")
                assert elapsed_s < 2.0
            assert [holder.finish().status for holder in holders] == [200, 200]
            results = [future.result() for future in burst]
        assert Counter(status for status, _, _ in results) == {503: BURST - 2, 200: 2}
        assert metric(client, 'ser_admission_rejected_total{reason="queue_full"}') == BURST - 2
        wait_for_metric(client, "ser_admission_in_flight", 0)
        assert metric(client, "ser_admission_queued") == 0


def test_a_wait_longer_than_the_queue_timeout_is_refused(models_dir: Path, speech: bytes) -> None:
    with (
        limited_server(
            models_dir, max_concurrent_requests=1, max_queued_requests=4, queue_timeout_s=0.5
        ) as url,
        httpx.Client(base_url=url, timeout=30.0) as client,
    ):
        (holder,) = hold_slots(client, url, 1)
        start_s = time.monotonic()
        response = client.post("/predict", files={"file": ("clip.wav", speech)})
        elapsed_s = time.monotonic() - start_s
        assert_overloaded(response, "1")
        assert 0.45 <= elapsed_s < 3.0
        assert "SER_MAX_CONCURRENT_REQUESTS" in response.json()["detail"]
        assert holder.finish().status == 200
        assert client.post("/predict", files={"file": ("clip.wav", speech)}).status_code == 200
        assert metric(client, 'ser_admission_rejected_total{reason="queue_timeout"}') == 1


def test_a_request_over_its_deadline_gets_503_and_frees_its_slot(
    models_dir: Path, speech: bytes
) -> None:
    with (
        limited_server(models_dir, max_concurrent_requests=1, request_timeout_s=1.0) as url,
        httpx.Client(base_url=url, timeout=30.0) as client,
    ):
        stalled = SlowUpload(url, "/explain", speech).start()  # never sends its second half
        start_s = time.monotonic()
        answer = stalled.answer()
        elapsed_s = time.monotonic() - start_s
        assert answer.status == 503
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["code"] == "request_timeout"
        assert "SER_REQUEST_TIMEOUT_S" in answer.json()["detail"]
        assert "retry-after" in answer.headers
        assert 0.9 <= elapsed_s < 5.0
        wait_for_metric(client, "ser_admission_in_flight", 0)
        assert client.post("/predict", files={"file": ("clip.wav", speech)}).status_code == 200
        assert metric(client, "ser_request_timeouts_total") == 1


def test_job_reads_and_metrics_are_not_limited(models_dir: Path) -> None:
    with (
        limited_server(models_dir, max_concurrent_requests=1, max_queued_requests=0) as url,
        httpx.Client(base_url=url, timeout=30.0) as client,
    ):
        (holder,) = hold_slots(client, url, 1)
        for path in ("/healthz", "/readyz", "/metrics", "/models", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        assert client.get("/jobs/" + "0" * 32).status_code == 503  # no queue here, not limited
        assert client.post("/explain").status_code == 503  # limited, and no place to wait
        assert holder.finish().status == 200
