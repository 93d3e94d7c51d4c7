"""The API process killed (SIGKILL) and started again while jobs run: every submitted job still
completes, with one result per file; figures printed (jobs submitted, completed, lost)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.service.jobs.conftest import (
    ROOT,
    ValkeyServer,
    WorkerFactory,
    free_port,
    new_queue,
    worker_env,
)
from tests.service.jobs.helpers import as_parts, ravdess_clips, submit, wait_for

JOBS = 6
FILES_PER_JOB = 4
API_START_TIMEOUT_S = 60.0


def start_api(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m service`` on ``port`` against the test's Valkey (no embedded queue)."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env={**env, "SER_PORT": str(port), "SER_HOST": "127.0.0.1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline_s = time.monotonic() + API_START_TIMEOUT_S
    while time.monotonic() < deadline_s:
        assert process.poll() is None, log_path.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the API did not become ready")


def test_jobs_survive_an_api_killed_and_restarted(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory, tmp_path: Path
) -> None:
    queue = new_queue()
    start_workers(valkey.url, queue, 1)
    env = worker_env(jobs_models_dir, valkey.url, queue)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clips = ravdess_clips(JOBS * FILES_PER_JOB, start=300)
    api = start_api(env, port, tmp_path / "api-1.log")
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            job_ids = [
                submit(client, as_parts(clips[n * FILES_PER_JOB : (n + 1) * FILES_PER_JOB])).json()[
                    "id"
                ]
                for n in range(JOBS)
            ]
            unfinished = [
                job_id
                for job_id in job_ids
                if client.get(f"/jobs/{job_id}").json()["status"] not in {"succeeded", "failed"}
            ]
        os.kill(api.pid, signal.SIGKILL)  # a crash: no shutdown code runs
        api.wait(timeout=10)
        api = start_api(env, port, tmp_path / "api-2.log")
        with httpx.Client(base_url=url, timeout=60) as client:
            statuses = [wait_for(client, job_id, timeout_s=180) for job_id in job_ids]
            files = [client.get(f"/jobs/{job_id}/results").json()["files"] for job_id in job_ids]
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=60)
    completed = sum(status["status"] == "succeeded" for status in statuses)
    results = sum(len(entries) for entries in files)
    print(
        f"\nAPI killed and restarted with {len(unfinished)} of {JOBS} jobs unfinished: "
        f"jobs submitted {JOBS}, completed {completed}, lost {JOBS - completed}; "
        f"files {JOBS * FILES_PER_JOB}, results {results}"
    )
    assert unfinished, "no job was still running when the API was killed; the test proves nothing"
    assert completed == JOBS
    assert results == JOBS * FILES_PER_JOB
    for status in statuses:
        assert status["progress"] == {
            "done": FILES_PER_JOB,
            "total": FILES_PER_JOB,
            "succeeded": FILES_PER_JOB,
            "failed": 0,
        }
