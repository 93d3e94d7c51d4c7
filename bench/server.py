"""Start the real service (``python -m service``) on a free port, wait for /readyz, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.process_memory import child_pids
from bench.timing import NS_PER_MS

READY_POLL_S = 0.02
STOP_TIMEOUT_S = 40.0
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunningServer:
    """A service process the benchmark started; ``ready_ms``: from spawn to /readyz = 200."""

    process: subprocess.Popen[bytes]
    base_url: str
    ready_ms: float
    log_path: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(
    models_dir: Path, port: int, threads: int, scratch: Path, extra: dict[str, str]
) -> dict[str, str]:
    """The service's environment: our port and models, quiet logs, one BLAS thread (as
    ``make run``), any embedded job queue on its own port and directory; then ``extra``."""
    env = dict(os.environ)
    env.update(
        {
            "SER_HOST": "127.0.0.1",
            "SER_PORT": str(port),
            "SER_MODELS_DIR": str(models_dir),
            "SER_ONNX_INTRA_OP_THREADS": str(threads),
            "SER_LOG_LEVEL": "WARNING",
            "SER_EMBEDDED_REDIS_PORT": str(free_port()),
            "SER_EMBEDDED_REDIS_DIR": str(scratch / "valkey"),
            "SER_EMBEDDED_WORKERS": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
    )
    env.update(extra)
    return env


def start_server(
    models_dir: Path, threads: int, scratch: Path, timeout_s: float, extra_env: dict[str, str]
) -> RunningServer:
    """Spawn the service in its own process group and wait for /readyz.

    Raises:
        RuntimeError: the process exited or was not ready within ``timeout_s``; the message
            holds the end of its log.
    """
    port = free_port()
    scratch.mkdir(parents=True, exist_ok=True)
    log_path = scratch / "server.log"
    env = server_environment(models_dir, port, threads, scratch, extra_env)
    with log_path.open("wb") as log:
        start_ns = time.perf_counter_ns()
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=REPOSITORY_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", 0.0, log_path)
    try:
        _wait_ready(server, timeout_s)
    except RuntimeError:
        stop_server(server)
        raise
    server.ready_ms = (time.perf_counter_ns() - start_ns) / NS_PER_MS
    return server


def _wait_ready(server: RunningServer, timeout_s: float) -> None:
    deadline_s = time.monotonic() + timeout_s
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.monotonic() < deadline_s:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"the service exited with {server.process.returncode}: {_tail(server.log_path)}"
                )
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(READY_POLL_S)
    raise RuntimeError(f"the service was not ready after {timeout_s} s: {_tail(server.log_path)}")


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"


def stop_server(server: RunningServer) -> int | None:
    """SIGTERM (graceful; the service then stops its own children), SIGKILL after
    ``STOP_TIMEOUT_S``; children still alive after that are ended by their pid."""
    process = server.process
    children = child_pids(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    return process.returncode


def models_served(base_url: str) -> Any:
    """``GET /models`` of the running service (which models, which is the default)."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        return client.get("/models").json()


def registry_load(models_dir: Path, threads: int) -> dict[str, Any]:
    """Registry load time and memory in a fresh process (``bench.load_probe``)."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.load_probe", str(models_dir), str(threads)],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        check=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result
