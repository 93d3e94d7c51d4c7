"""The embedded queue's parts: the Valkey server, its data-directory lock, the supervisor."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from service.jobs.connection import connect
from service.jobs.embedded import EmbeddedValkey, embedded_stack, ownership, start_valkey
from service.jobs.supervisor import Supervised
from tests.service.jobs.conftest import free_port, job_settings


def test_the_stack_serves_a_persistent_loopback_valkey(
    tmp_path: Path, jobs_models_dir: Path
) -> None:
    port = free_port()
    settings = job_settings(
        jobs_models_dir,
        None,
        "q",
        embedded_redis_dir=tmp_path / "data",
        embedded_redis_port=port,
        embedded_workers=0,
    )
    with embedded_stack(settings) as url:
        assert url == f"redis://127.0.0.1:{port}/0"
        client = Redis.from_url(url)
        client.set("kept", "yes")
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        with (
            pytest.raises(RuntimeError, match=r"another process \(pid \d+\) runs the embedded"),
            ownership(tmp_path / "data"),
        ):
            pass  # pragma: no cover
    with pytest.raises(RedisConnectionError):
        connect(f"redis://127.0.0.1:{port}/0", 0.5, retries=0).ping()  # stopped on the way out
    with embedded_stack(settings) as url:
        assert Redis.from_url(url).get("kept") == b"yes"  # the data survived the restart


def test_a_server_left_behind_is_replaced_and_a_stranger_refused(tmp_path: Path) -> None:
    port = free_port()
    orphan = start_valkey(EmbeddedValkey(tmp_path / "ours", port))
    EmbeddedValkey(tmp_path / "ours", port).prepare()  # our directory: shut down
    assert orphan.wait(timeout=10) == 0
    stranger = start_valkey(EmbeddedValkey(tmp_path / "theirs", port))
    try:
        with pytest.raises(RuntimeError, match=f"port {port} is taken by another"):
            EmbeddedValkey(tmp_path / "ours", port).prepare()
    finally:
        stranger.terminate()
        stranger.wait(timeout=10)


def test_the_supervisor_restarts_a_child_until_stopped() -> None:
    child = Supervised("short-lived", [sys.executable, "-c", "pass"])
    child.start()
    deadline_s = time.monotonic() + 20
    while child.restarts < 2:
        assert time.monotonic() < deadline_s, "the child was not restarted"
        time.sleep(0.05)
    child.stop()
    restarts = child.restarts
    time.sleep(1.0)
    assert child.restarts == restarts


def test_stop_terminates_a_running_child() -> None:
    child = Supervised("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    child.start()
    pid = child.pid
    assert pid is not None
    started_s = time.monotonic()
    child.stop()
    assert time.monotonic() - started_s < 10
    assert child.restarts == 0
