"""``SER_WORKERS=2 python -m service``: two uvicorn workers beside one embedded job queue, and
``/metrics`` summing both workers' counters (Prometheus multi-process mode)."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx

from tests.audio_factory import FORMATS
from tests.onnx_factory import build_model
from tests.service.api.test_predict import clip_at
from tests.service.test_startup import free_port, start_service, wait_until_healthy

PREDICT_CALLS = 6
MAX_PREDICT_CALLS = 60
PREDICT_COUNTER = re.compile(
    r'^ser_http_requests_total\{method="POST",route="/predict",status="200"\} (\S+)$', re.M
)


def start_two_workers(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    return start_service(
        tmp_path / "models",
        port,
        {
            "SER_WORKERS": "2",
            "SER_EMBEDDED_REDIS_PORT": str(free_port()),
            "SER_EMBEDDED_REDIS_DIR": str(tmp_path / "valkey"),
            "SER_EMBEDDED_WORKERS": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
    )


def metric_file_pids(directory: Path) -> set[str]:
    """Process ids in the multi-process files (``<kind>_<pid>.db``)."""
    return {path.stem.rsplit("_", 1)[1] for path in directory.glob("*.db")}


def test_two_workers_share_the_queue_and_sum_their_metrics(tmp_path: Path) -> None:
    build_model(tmp_path / "models")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_999999.db").write_bytes(b"stale")  # emptied at start
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_two_workers(tmp_path, port)
    try:
        wait_until_healthy(process, url)
        upload = FORMATS["wav_pcm_16"].encode(clip_at(16000, 1), 16000)
        sent = 0
        # A new connection each: either worker may answer, and the kernel need not alternate
        # (6 calls once all went to one worker), so send until both wrote or MAX_PREDICT_CALLS.
        while sent < PREDICT_CALLS or (
            len(metric_file_pids(tmp_path / "metrics") - {"999999"}) < 2
            and sent < MAX_PREDICT_CALLS
        ):
            response = httpx.post(url + "/predict", files={"file": ("a.wav", upload)}, timeout=30)
            assert response.status_code == 200, response.text
            sent += 1
        readiness = httpx.get(url + "/readyz", timeout=10).json()
        text = httpx.get(url + "/metrics", timeout=10).text
        pids = metric_file_pids(tmp_path / "metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGTERM), stderr
    counted = PREDICT_COUNTER.search(text)
    assert counted is not None, text
    assert float(counted.group(1)) == sent
    assert "ser_model_batch_segments_bucket" in text and "ser_job_queue_up 1.0" in text
    assert readiness["checks"]["queue"].startswith("reachable at redis://127.0.0.1")
    assert "999999" not in pids and len(pids) == 2, pids  # exactly the two workers wrote
    assert stderr.count("embedded Valkey ready") == 1  # started once, by the parent
