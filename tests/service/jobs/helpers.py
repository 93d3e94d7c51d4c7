"""Submitting jobs, waiting for them and comparing their results with ``/predict``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import StartedJobRegistry

from service.jobs import keys
from tests.data_paths import shared_data_dir

FINAL = {"succeeded", "failed", "canceled"}
VOLATILE = ("request_id", "timing_ms")


def ravdess_clips(count: int, start: int = 0) -> list[Path]:
    """``count`` real RAVDESS clips in a fixed order."""
    clips = sorted((shared_data_dir() / "ravdess" / "audio").glob("*.flac"))
    assert len(clips) >= start + count, "not enough RAVDESS clips in the shared data"
    return clips[start : start + count]


def as_parts(paths: list[Path]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("file", (path.name, path.read_bytes())) for path in paths]


def submit(
    client: httpx.Client,
    parts: list[tuple[str, tuple[str, bytes]]],
    expected_status: int = 202,
    **kwargs: Any,
) -> httpx.Response:
    response = client.post("/jobs", files=parts, **kwargs)
    assert response.status_code == expected_status, response.text
    return response


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    """The job's status, or ``None`` while the queue is unavailable (503, e.g. Redis restarting)."""
    response = client.get(f"/jobs/{job_id}")
    if response.status_code == 503:
        assert response.json()["code"] == "queue_unavailable"
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(client: httpx.Client, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` until the job ends; its last status."""
    deadline_s = time.monotonic() + timeout_s
    while True:
        body = job_status(client, job_id)
        if body is not None and body["status"] in FINAL:
            return body
        assert time.monotonic() < deadline_s, f"job did not end in {timeout_s} s: {body}"
        time.sleep(0.1)


def wait_for_progress(client: httpx.Client, job_id: str, done: int, timeout_s: float = 60.0) -> int:
    """Poll until at least ``done`` files have an outcome; how many had then."""
    deadline_s = time.monotonic() + timeout_s
    while True:
        body = job_status(client, job_id)
        if body is not None and body["progress"]["done"] >= done:
            return int(body["progress"]["done"])
        assert time.monotonic() < deadline_s, f"job {job_id} did not reach {done} files"
        time.sleep(0.02)


def stable(body: dict[str, Any]) -> dict[str, Any]:
    """A /predict body without what differs between two calls (request id, timings)."""
    return {key: value for key, value in body.items() if key not in VOLATILE}


def predict(client: httpx.Client, name: str, data: bytes, **params: str) -> dict[str, Any]:
    response = client.post("/predict", files={"file": (name, data)}, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def kill_mid_file(worker_pid: int, redis: Redis, queue: str, timeout_s: float = 30.0) -> list[int]:
    """SIGKILL a worker and its work horse while the horse is inside a file (RQ status
    ``started``, set by the horse itself, and the file's outcome not yet recorded): a crash in
    the middle of the analysis.

    The horse is suspended before it is checked, so it cannot finish the file between that
    check and the kill (a race a loaded machine made real). The outcome is checked too: a horse
    stopped after recording it but before RQ marked the job finished had done the file's work,
    and its retry could run after the job had already succeeded. Otherwise it is resumed and
    the search goes on.

    Returns:
        The pids killed (the worker's first).
    """
    rq_queue = Queue(queue, connection=redis)
    name = next(w.name for w in Worker.all(queue=rq_queue) if w.pid == worker_pid)
    parent = psutil.Process(worker_pid)
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        for job_id in StartedJobRegistry(queue=rq_queue).get_job_ids(cleanup=False):
            job = Job.fetch(job_id, connection=redis)
            if job.worker_name != name:
                continue
            horses = parent.children(recursive=True)
            if not horses:
                continue
            with _suspended(horses) as frozen:
                if frozen and job.get_status() == "started" and not _recorded(redis, job):
                    victims = [parent, *horses]
                    for victim in victims:
                        with contextlib.suppress(psutil.NoSuchProcess):  # ended on its own
                            victim.kill()
                    psutil.wait_procs(victims, timeout=10)
                    return [victim.pid for victim in victims]
        time.sleep(0.005)
    raise AssertionError("the worker never started a file")


def _recorded(redis: Redis, file_job: Job) -> bool:
    """Whether the file an RQ file job analyses (args: job id, index) has its outcome stored."""
    job_id, index = file_job.args
    return bool(redis.hexists(keys.outcomes(job_id), str(index)))


@contextlib.contextmanager
def _suspended(processes: list[psutil.Process]) -> Iterator[bool]:
    """SIGSTOP ``processes`` for the block (True) and resume the survivors afterwards; False
    when one of them had already exited (nothing then stays stopped)."""
    stopped: list[psutil.Process] = []
    try:
        for process in processes:
            process.suspend()
            stopped.append(process)
    except psutil.NoSuchProcess:
        yield False
    else:
        yield True
    finally:
        for process in stopped:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
