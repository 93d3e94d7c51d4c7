"""The real entry point: ``python -m service`` starts, serves, shuts down gracefully, and
refuses to start on a broken model with a message naming the file and the node."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.onnx_factory import TinyModelSpec, build_model

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_service(models_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SER_MODELS_DIR": str(models_dir),
        "SER_PORT": str(port),
        "SER_HOST": "127.0.0.1",
        "SER_LOG_JSON": "true",
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
