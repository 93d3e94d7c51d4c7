"""Nothing lost: a worker killed with SIGKILL mid-file, Redis restarted, Redis unreachable."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from rq import Queue

from service.jobs import keys
from tests.audio_factory import FORMATS, load_clip
from tests.onnx_factory import TinyModelSpec, build_model
from tests.service.jobs.conftest import (
    ValkeyServer,
    WorkerFactory,
    WorkerProcess,
    free_port,
    job_settings,
    new_queue,
    serve,
)
from tests.service.jobs.helpers import (
    as_parts,
    assert_problem,
    kill_mid_file,
    predict,
    ravdess_clips,
    stable,
    submit,
    wait_for,
    wait_for_progress,
)


def stat(valkey: ValkeyServer, name: str) -> int:
    return int(valkey.client().hget(keys.STATS, name) or 0)


def long_recordings(count: int, clips_each: int = 6) -> list[tuple[str, tuple[str, bytes]]]:
    """``count`` recordings of ``clips_each`` RAVDESS clips in a row (about 20 s, several
    segments), so that a worker spends long enough inside each file to be killed there."""
    parts = []
    for number in range(count):
        paths = ravdess_clips(clips_each, start=400 + number * clips_each)
        signal = np.concatenate([load_clip(path)[0] for path in paths], axis=1)
        parts.append(("file", (f"long-{number}.flac", FORMATS["flac"].encode(signal, 16000))))
    return parts


def test_a_killed_worker_loses_no_file(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    queue = new_queue()
    victim, survivor = start_workers(valkey.url, queue, 2)
    parts = long_recordings(12)
    succeeded_before, retried_before = (
        stat(valkey, "files_succeeded"),
        stat(valkey, "files_retried"),
    )
    with (
        serve(job_settings(jobs_models_dir, valkey.url, queue)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        job_id = submit(client, parts).json()["id"]
        wait_for_progress(client, job_id, 2)
        killed = kill_mid_file(victim.process.pid, valkey.client(), queue)
        assert len(killed) == 2, "the worker and its work horse"
        status = wait_for(client, job_id, timeout_s=90)
        assert status["status"] == "succeeded"
        assert status["progress"] == {"done": 12, "total": 12, "succeeded": 12, "failed": 0}
        assert stat(valkey, "files_succeeded") - succeeded_before == 12  # each file once
        assert stat(valkey, "files_retried") - retried_before == 1  # the killed one, again
        files = client.get(f"/jobs/{job_id}/results").json()["files"]
        assert [entry["index"] for entry in files] == list(range(12))
        for (_, (name, data)), entry in zip(parts, files, strict=True):
            assert stable(entry["result"]) == stable(predict(client, name, data))
    assert survivor.process.poll() is None


def test_queued_and_finished_jobs_survive_a_redis_restart(
    private_valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    queue, idle_queue = new_queue(), new_queue()
    start_workers(private_valkey.url, queue, 2)
    settings = job_settings(jobs_models_dir, private_valkey.url, queue)
    idle_settings = job_settings(jobs_models_dir, private_valkey.url, idle_queue)
    with serve(settings) as url, serve(idle_settings) as idle_url:
        client = httpx.Client(base_url=url, timeout=60)
        idle_client = httpx.Client(base_url=idle_url, timeout=60)
        finished_id = submit(client, as_parts(ravdess_clips(2))).json()["id"]
        finished = wait_for(client, finished_id)
        finished_results = client.get(f"/jobs/{finished_id}/results").json()
        queued_id = submit(idle_client, as_parts(ravdess_clips(3))).json()["id"]
        running_id = submit(client, as_parts(ravdess_clips(30, start=300))).json()["id"]
        wait_for_progress(client, running_id, 5)

        private_valkey.stop()
        assert_problem(client.get(f"/jobs/{running_id}"), 503, "queue_unavailable")
        private_valkey.start()

        assert client.get(f"/jobs/{finished_id}").json() == finished
        assert client.get(f"/jobs/{finished_id}/results").json() == finished_results
        assert idle_client.get(f"/jobs/{queued_id}").json()["status"] == "queued"
        assert Queue(idle_queue, connection=private_valkey.client()).count == 3
        status = wait_for(client, running_id, timeout_s=90)
        assert status["progress"] == {"done": 30, "total": 30, "succeeded": 30, "failed": 0}
        assert stat(private_valkey, "files_succeeded") == 2 + 30  # nothing twice, nothing lost
        client.close()
        idle_client.close()


def test_unreachable_redis_leaves_predict_working(jobs_models_dir: Path) -> None:
    settings = job_settings(jobs_models_dir, f"redis://127.0.0.1:{free_port()}/0", "q")
    clip = ravdess_clips(1)[0]
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = assert_problem(
            client.post("/jobs", files=as_parts([clip])), 503, "queue_unavailable"
        )
        assert "/predict still works" in body["detail"]
        assert_problem(client.get(f"/jobs/{'a' * 32}"), 503, "queue_unavailable")
        assert_problem(client.get(f"/jobs/{'a' * 32}/results"), 503, "queue_unavailable")
        assert_problem(client.delete(f"/jobs/{'a' * 32}"), 503, "queue_unavailable")
        assert (
            client.post("/predict", files={"file": (clip.name, clip.read_bytes())}).status_code
            == 200
        )
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["queue"].startswith("unreachable: the batch-job queue at")
        metrics = client.get("/metrics").text
        assert "ser_job_queue_up 0.0" in metrics
        assert "ser_job_queue_depth" not in metrics


def test_no_queue_configured(jobs_models_dir: Path) -> None:
    settings = job_settings(jobs_models_dir, None, "q")
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = assert_problem(client.get(f"/jobs/{'a' * 32}"), 503, "queue_unavailable")
        assert "not configured" in body["detail"]
        assert client.get("/readyz").json()["checks"]["queue"].startswith("not configured")


def kill_horse(worker: WorkerProcess, timeout_s: float = 30.0) -> None:
    """SIGKILL only the work horse (the worker survives and handles it)."""
    parent = psutil.Process(worker.process.pid)
    deadline_s = time.monotonic() + timeout_s
    while not (horses := parent.children()):
        assert time.monotonic() < deadline_s, "the worker never started a file"
        time.sleep(0.002)
    horses[0].kill()
    horses[0].wait(timeout=10)


def test_a_file_that_kills_every_attempt_fails_alone(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    queue = new_queue()
    (worker,) = start_workers(valkey.url, queue, 1)
    settings = job_settings(jobs_models_dir, valkey.url, queue, job_max_attempts=2)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        job_id = submit(client, long_recordings(1)).json()["id"]
        kill_horse(worker)
        kill_horse(worker)
        status = wait_for(client, job_id)
        assert status["status"] == "failed"
        (error,) = status["errors"]
        assert error["code"] == "processing_failed" and error["status"] == 500
        assert "every attempt" in error["detail"] and "signal 9" in error["detail"]
    assert worker.process.poll() is None


def test_a_worker_without_the_jobs_model_reports_it(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory, tmp_path: Path
) -> None:
    other_models = tmp_path / "other-models"
    build_model(other_models, TinyModelSpec(name="tiny", version="1.10.0", seed=7))
    queue = new_queue()
    start_workers(valkey.url, queue, 1, SER_MODELS_DIR=str(other_models))
    with (
        serve(job_settings(jobs_models_dir, valkey.url, queue)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        status = wait_for(client, submit(client, as_parts(ravdess_clips(1))).json()["id"])
    (error,) = status["errors"]
    assert error["code"] == "model_unavailable" and "sha256" in error["detail"]
