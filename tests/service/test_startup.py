"""The real entry point: ``python -m service`` starts, serves, shuts down gracefully, and
refuses to start on a broken model with a message naming the file and the node."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from service.inference.manifest import read_manifest, write_manifest
from tests.onnx_factory import TinyModelSpec, build_model

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_service(
    models_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    outside = ("SER_REDIS_URL", "MALLOC_ARENA_MAX")
    inherited = {k: v for k, v in os.environ.items() if k not in outside}
    env = {
        **inherited,  # no outside Redis: the service starts its embedded queue
        "SER_MODELS_DIR": str(models_dir),
        "SER_PORT": str(port),
        "SER_HOST": "127.0.0.1",
        "SER_LOG_JSON": "true",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_healthy(process: subprocess.Popen[str], url: str) -> None:
    deadline_s = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline_s:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("service did not become healthy")


def test_serves_and_shuts_down_gracefully(tmp_path: Path) -> None:
    build_model(tmp_path)
    port = free_port()
    process = start_service(tmp_path, port)
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}")
        models = httpx.get(f"http://127.0.0.1:{port}/models", timeout=5.0).json()["models"]
        assert [m["name"] for m in models] == ["tiny"]
        children = psutil.Process(process.pid).children(recursive=True)
        workers = [c for c in children if "service.jobs.worker" in c.cmdline()]
        assert workers, "the embedded queue's worker runs as a child"
        # SER_MALLOC_ARENA_MAX (default 2) reached the Python processes the service started
        # (valkey-server rewrites the memory /proc shows as its environment)
        assert [w.environ().get("MALLOC_ARENA_MAX") for w in workers] == ["2"] * len(workers)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    # uvicorn re-raises the caught SIGTERM after its graceful shutdown, hence -SIGTERM
    assert process.returncode in (0, -signal.SIGTERM), stderr
    messages = [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]
    assert "service ready" in messages
    assert messages.index("Shutting down") < messages.index(
        f"Finished server process [{process.pid}]"
    )


def test_broken_model_stops_start_up_naming_file_and_node(tmp_path: Path) -> None:
    build_model(tmp_path, TinyModelSpec(drop_output="octant_logits"))
    process = start_service(tmp_path, free_port())
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "tiny/1.0.0/model.onnx: output node 'octant_logits' (head 'octant')" in stderr


def break_missing(model_dir: Path) -> None:
    (model_dir / "model.onnx").unlink()


def break_truncated(model_dir: Path) -> None:
    """Half the file: its sha256 no longer matches the manifest."""
    path = model_dir / "model.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def break_garbage_with_matching_hash(model_dir: Path) -> None:
    """Not ONNX at all, with a manifest re-hashed to match (so ONNX Runtime has to refuse it)."""
    garbage = b"this is not an ONNX graph \x00\xff" * 1000
    (model_dir / "model.onnx").write_bytes(garbage)
    manifest = read_manifest(model_dir)
    write_manifest(
        manifest.model_copy(update={"sha256": hashlib.sha256(garbage).hexdigest()}), model_dir
    )


def break_manifest(model_dir: Path) -> None:
    (model_dir / "manifest.json").write_text('{"name": "tiny", ', encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (break_missing, "tiny/1.0.0/model.onnx: model file missing"),
        (break_truncated, "tiny/1.0.0/model.onnx: sha256 "),
        (break_garbage_with_matching_hash, "tiny/1.0.0/model.onnx: not a loadable ONNX model"),
        (break_manifest, "tiny/1.0.0/manifest.json: not valid JSON"),
    ],
)
def test_a_missing_or_corrupt_model_stops_start_up_with_nothing_left_running(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    """Exit non-zero naming the file; the port never answers; the embedded queue it started
    first (Valkey, a worker) is stopped again."""
    models_dir = tmp_path / "models"
    damage(build_model(models_dir))
    port = free_port()
    process = start_service(models_dir, port, embedded_queue_env(tmp_path))
    answered = port_answered_while_running(process, port)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert message in stderr
    assert not answered, "the service accepted connections with a broken model"
    assert processes_mentioning(str(tmp_path)) == []


def embedded_queue_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SER_EMBEDDED_REDIS_PORT": str(free_port()),
        "SER_EMBEDDED_REDIS_DIR": str(tmp_path / "valkey"),
        "SER_EMBEDDED_WORKERS": "1",
    }


def port_answered_while_running(process: subprocess.Popen[str], port: int) -> bool:
    deadline_s = time.monotonic() + START_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline_s:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def processes_mentioning(fragment: str) -> list[str]:
    """Command lines of live processes that mention ``fragment`` (say a data directory)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if fragment in cmdline:
            found.append(cmdline)
    return found
