"""Idempotency, cancel, expiry, callbacks, metrics and the API restart, over real HTTP."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rq import Queue

from service.jobs import keys
from tests.service.jobs.conftest import (
    CALLBACK_SECRET,
    ValkeyServer,
    WorkerFactory,
    job_settings,
    new_queue,
    serve,
)
from tests.service.jobs.helpers import (
    as_parts,
    ravdess_clips,
    submit,
    wait_for,
    wait_for_progress,
)


def test_same_idempotency_key_returns_the_same_job(jobs_client: httpx.Client) -> None:
    parts = as_parts(ravdess_clips(2, start=40))
    headers = {"Idempotency-Key": f"batch-{time.time_ns()}"}
    first = submit(jobs_client, parts, headers=headers)
    again = submit(jobs_client, parts, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    wait_for(jobs_client, first.json()["id"])
    after_end = submit(jobs_client, parts, headers=headers)
    assert after_end.json()["id"] == first.json()["id"]
    assert after_end.json()["status"] == "succeeded"
    other = submit(jobs_client, parts, headers={"Idempotency-Key": f"other-{time.time_ns()}"})
    assert other.json()["id"] != first.json()["id"]


def test_idempotency_key_reused_for_another_request(jobs_client: httpx.Client) -> None:
    headers = {"Idempotency-Key": f"reuse-{time.time_ns()}"}
    submit(jobs_client, as_parts(ravdess_clips(1, start=50)), headers=headers)
    response = jobs_client.post(
        "/jobs", files=as_parts(ravdess_clips(1, start=51)), headers=headers
    )
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    response = jobs_client.post(
        "/jobs",
        files=as_parts(ravdess_clips(1, start=50)),
        headers=headers,
        params={"model": "tiny@1.0.0"},
    )
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"


def test_cancel_a_queued_job(valkey: ValkeyServer, jobs_models_dir: Path) -> None:
    queue = new_queue()  # no worker listens here: the job stays queued
    with (
        serve(job_settings(jobs_models_dir, valkey.url, queue)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        job_id = submit(client, as_parts(ravdess_clips(3))).json()["id"]
        assert Queue(queue, connection=valkey.client()).count == 3
        canceled = client.delete(f"/jobs/{job_id}")
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "canceled"
        assert canceled.json()["finished_at"] is not None
        assert Queue(queue, connection=valkey.client()).count == 0
        assert valkey.client().exists(keys.audio(job_id)) == 0
        assert client.delete(f"/jobs/{job_id}").json()["status"] == "canceled"
        files = client.get(f"/jobs/{job_id}/results").json()["files"]
        assert [entry["status"] for entry in files] == ["canceled"] * 3


def test_cancel_a_running_job(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    queue = new_queue()
    start_workers(valkey.url, queue, 1)
    with (
        serve(job_settings(jobs_models_dir, valkey.url, queue)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        job_id = submit(client, as_parts(ravdess_clips(40, start=100))).json()["id"]
        wait_for_progress(client, job_id, 2)
        canceled = client.delete(f"/jobs/{job_id}").json()
        assert canceled["status"] == "canceled"
        done_at_cancel = canceled["progress"]["done"]
        assert done_at_cancel < 40
        time.sleep(1.0)  # a file that was running finishes, but is not recorded
        later = client.get(f"/jobs/{job_id}").json()
        assert later["status"] == "canceled"
        assert later["progress"]["done"] == done_at_cancel
        assert Queue(queue, connection=valkey.client()).count == 0


def test_results_expire(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    queue = new_queue()
    start_workers(valkey.url, queue, 1)
    settings = job_settings(jobs_models_dir, valkey.url, queue, job_result_ttl_s=1)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        headers = {"Idempotency-Key": f"expiring-{time.time_ns()}"}
        job_id = submit(client, as_parts(ravdess_clips(2)), headers=headers).json()["id"]
        status = wait_for(client, job_id)
        assert status["status"] == "succeeded"
        assert client.get(f"/jobs/{job_id}/results").status_code == 200
        time.sleep(2.2)
        assert client.get(f"/jobs/{job_id}").json()["code"] == "job_not_found"
        assert client.get(f"/jobs/{job_id}/results").status_code == 404
        redis = valkey.client()
        assert redis.keys(f"ser:job:{job_id}*") == []
        assert redis.exists(keys.idempotency(headers["Idempotency-Key"])) == 0
        assert client.get("/metrics").status_code == 200  # the jobs-by-state gauge prunes
        assert redis.zscore(keys.state_set("succeeded"), job_id) is None


def test_unfinished_jobs_and_their_audio_expire(
    valkey: ValkeyServer, jobs_models_dir: Path
) -> None:
    settings = job_settings(jobs_models_dir, valkey.url, new_queue(), job_pending_ttl_s=1)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        job_id = submit(client, as_parts(ravdess_clips(2))).json()["id"]
        assert valkey.client().hlen(keys.audio(job_id)) == 2
        time.sleep(2.2)
        assert client.get(f"/jobs/{job_id}").status_code == 404
        assert valkey.client().exists(keys.audio(job_id)) == 0


class CallbackReceiver:
    """An HTTP server on loopback that records POSTs; answers ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.received.append((dict(self.headers), body))
                    receiver.arrived.set()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver(statuses=[503])  # the first delivery fails, the retry succeeds
    yield server
    server.close()


def test_callback_is_signed_and_retried(
    jobs_client: httpx.Client, receiver: CallbackReceiver
) -> None:
    params = {"callback_url": receiver.url}
    job_id = submit(jobs_client, as_parts(ravdess_clips(2)), params=params).json()["id"]
    assert wait_for(jobs_client, job_id)["status"] == "succeeded"
    assert receiver.arrived.wait(timeout=30), "no callback arrived"
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(CALLBACK_SECRET.encode(), body, sha256).hexdigest()
    assert hmac.compare_digest(headers["X-SER-Signature"], expected)
    assert headers["X-SER-Job-ID"] == job_id
    document = json.loads(body)
    assert document["id"] == job_id and document["status"] == "succeeded"
    assert document["progress"]["done"] == 2
    deadline_s = time.monotonic() + 10
    while jobs_client.get(f"/jobs/{job_id}").json()["callback"]["state"] != "delivered":
        assert time.monotonic() < deadline_s
        time.sleep(0.05)
    callback = jobs_client.get(f"/jobs/{job_id}").json()["callback"]
    assert callback == {
        "url": receiver.url,
        "state": "delivered",
        "attempts": 2,
        "last_status": 200,
    }
    assert len(receiver.received) == 1
    tampered = body.replace(b"succeeded", b"failed")
    assert not hmac.compare_digest(
        headers["X-SER-Signature"],
        "sha256=" + hmac.new(CALLBACK_SECRET.encode(), tampered, sha256).hexdigest(),
    )


def test_cancel_calls_back(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    receiver = CallbackReceiver()
    queue = new_queue()  # no worker yet: the job stays queued until it is canceled
    settings = job_settings(jobs_models_dir, valkey.url, queue)
    try:
        with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
            params = {"callback_url": receiver.url}
            job_id = submit(client, as_parts(ravdess_clips(3)), params=params).json()["id"]
            assert client.delete(f"/jobs/{job_id}").json()["status"] == "canceled"
            callback_queue = Queue(queue, connection=valkey.client())
            assert callback_queue.job_ids == [keys.rq_callback_job(job_id)]
            start_workers(valkey.url, queue, 1)
            assert receiver.arrived.wait(timeout=30), "no callback arrived"
            _, body = receiver.received[0]
            assert json.loads(body)["status"] == "canceled"
            assert json.loads(body)["progress"]["done"] == 0
    finally:
        receiver.close()


def test_metrics_show_the_queue(jobs_client: httpx.Client) -> None:
    job_id = submit(jobs_client, as_parts(ravdess_clips(2))).json()["id"]
    wait_for(jobs_client, job_id)
    text = jobs_client.get("/metrics").text
    assert "ser_job_queue_up 1.0" in text
    assert "ser_job_workers 2.0" in text
    assert "ser_job_queue_depth " in text
    assert 'ser_jobs{state="succeeded"}' in text
    assert 'ser_job_files_total{outcome="succeeded"}' in text
    assert "ser_job_file_retries_total " in text
    assert 'ser_job_file_duration_seconds_bucket{le="+Inf"}' in text
    assert "ser_job_duration_seconds_count" in text
    ready = jobs_client.get("/readyz").json()
    assert ready["checks"]["queue"].startswith("reachable at redis://127.0.0.1:")
    assert "2 workers" in ready["checks"]["queue"]


def test_status_and_results_survive_an_api_restart(
    valkey: ValkeyServer, jobs_models_dir: Path, shared_queue: str, shared_workers: object
) -> None:
    settings = job_settings(jobs_models_dir, valkey.url, shared_queue)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        job_id = submit(client, as_parts(ravdess_clips(2))).json()["id"]
        status = wait_for(client, job_id)
        results = client.get(f"/jobs/{job_id}/results").json()
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get(f"/jobs/{job_id}").json() == status
        assert client.get(f"/jobs/{job_id}/results").json() == results
