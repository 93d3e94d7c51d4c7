"""Done when: 100 clips from ../shared/data complete with results identical to /predict, through
a worker crash and a Redis restart in the middle, on the embedded default (``python -m service``
without SER_REDIS_URL) and on a separately started Valkey with separate workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis

from service.jobs import keys
from tests.service.jobs.conftest import (
    FAST_RECOVERY_ENV,
    ROOT,
    ValkeyServer,
    WorkerFactory,
    free_port,
    job_settings,
    new_queue,
    serve,
)
from tests.service.jobs.helpers import (
    as_parts,
    kill_mid_file,
    predict,
    ravdess_clips,
    stable,
    submit,
    wait_for,
    wait_for_progress,
)

CLIPS = 100
SERVICE_START_TIMEOUT_S = 60.0


def run_hundred_clips(
    client: httpx.Client, crash_worker: Callable[[], None], restart_redis: Callable[[], None]
) -> tuple[dict[str, Any], float]:
    """Submit 100 clips, crash a worker after 20, restart Redis after 50; check every result."""
    clips = ravdess_clips(CLIPS, start=500)
    started_s = time.monotonic()
    job_id = submit(client, as_parts(clips)).json()["id"]
    wait_for_progress(client, job_id, 20)
    crash_worker()
    wait_for_progress(client, job_id, 50)
    restart_redis()
    status = wait_for(client, job_id, timeout_s=180)
    elapsed_s = time.monotonic() - started_s
    assert status["status"] == "succeeded"
    assert status["progress"] == {"done": CLIPS, "total": CLIPS, "succeeded": CLIPS, "failed": 0}
    files = client.get(f"/jobs/{job_id}/results").json()["files"]
    assert [entry["name"] for entry in files] == [clip.name for clip in clips]
    for clip, entry in zip(clips, files, strict=True):
        assert stable(entry["result"]) == stable(predict(client, clip.name, clip.read_bytes()))
    print(f"\n{CLIPS}-clip job with a worker crash and a Redis restart: {elapsed_s:.1f} s")
    return status, elapsed_s


@pytest.mark.slow
def test_on_a_separately_started_valkey(
    private_valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory
) -> None:
    queue = new_queue()
    victim, _ = start_workers(private_valkey.url, queue, 2)

    def crash_worker() -> None:
        kill_mid_file(victim.process.pid, private_valkey.client(), queue)
        victim.process.wait(timeout=10)
        start_workers(private_valkey.url, queue, 1)  # the operator's replacement

    with (
        serve(job_settings(jobs_models_dir, private_valkey.url, queue)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        run_hundred_clips(client, crash_worker, private_valkey.restart)
    assert int(private_valkey.client().hget(keys.STATS, "files_succeeded") or 0) == CLIPS


@dataclass(frozen=True)
class EmbeddedService:
    url: str
    pid: int
    data_dir: Path
    valkey_port: int


@pytest.fixture()
def embedded_service(jobs_models_dir: Path, tmp_path: Path) -> Iterator[EmbeddedService]:
    """``python -m service`` with no SER_REDIS_URL: its own Valkey and two supervised workers."""
    port, valkey_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SER_")}
    env.update(
        SER_MODELS_DIR=str(jobs_models_dir),
        SER_DEFAULT_MODEL="tiny",
        SER_PORT=str(port),
        SER_EMBEDDED_REDIS_PORT=str(valkey_port),
        SER_EMBEDDED_REDIS_DIR=str(tmp_path / "valkey"),
        SER_EMBEDDED_WORKERS="2",
        SER_LOG_JSON="false",
        **FAST_RECOVERY_ENV,
    )
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_jobs_ready(process, url, workers=2)
        yield EmbeddedService(url, process.pid, tmp_path / "valkey", valkey_port)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def wait_until_jobs_ready(process: subprocess.Popen[bytes], url: str, workers: int) -> None:
    deadline_s = time.monotonic() + SERVICE_START_TIMEOUT_S
    while time.monotonic() < deadline_s:
        assert process.poll() is None, "the service exited"
        try:
            queue = httpx.get(url + "/readyz", timeout=2).json()["checks"]["queue"]
            if f"{workers} workers" in queue:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the embedded queue did not become ready")


def children_running(service_pid: int, fragment: str) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(service_pid).children()
        if fragment in " ".join(child.cmdline())
    ]


@pytest.mark.slow
def test_on_the_embedded_default(embedded_service: EmbeddedService) -> None:
    service = embedded_service
    redis = Redis(port=service.valkey_port)
    assert redis.config_get("dir")["dir"] == str(service.data_dir.resolve())
    assert redis.config_get("bind")["bind"] == "127.0.0.1"
    assert redis.config_get("appendonly")["appendonly"] == "yes"
    (valkey,) = children_running(service.pid, "valkey-server")
    workers = children_running(service.pid, "service.jobs.worker")
    assert len(workers) == 2

    def crash_worker() -> None:
        kill_mid_file(workers[0].pid, redis, "ser-jobs")  # the supervisor starts a new one

    def restart_redis() -> None:
        valkey.terminate()  # the supervisor starts it again on the same data
        valkey.wait(timeout=30)

    with httpx.Client(base_url=service.url, timeout=60) as client:
        run_hundred_clips(client, crash_worker, restart_redis)
    new_workers = children_running(service.pid, "service.jobs.worker")
    assert len(new_workers) == 2 and workers[0].pid not in {w.pid for w in new_workers}
    (new_valkey,) = children_running(service.pid, "valkey-server")
    assert new_valkey.pid != valkey.pid
    assert int(redis.hget(keys.STATS, "files_succeeded") or 0) == CLIPS
    os.kill(service.pid, signal.SIGTERM)  # the service stops its workers, then Valkey
    _, alive = psutil.wait_procs([new_valkey, *new_workers], timeout=60)
    assert alive == []
