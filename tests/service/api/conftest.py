"""A real uvicorn server on a loopback port, serving tiny real ONNX models, for HTTP tests."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile
import uvicorn
from fastapi import FastAPI

from service.api.app import create_app
from service.config import Settings
from tests.data_paths import ravdess_clip
from tests.onnx_factory import TinyModelSpec, build_model

SERVER_START_TIMEOUT_S = 20.0


class LiveServer:
    """uvicorn serving ``app`` in a background thread on an ephemeral loopback port."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline_s = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline_s or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions of one tiny model and a second model with an ensemble head."""
    directory = tmp_path_factory.mktemp("models")
    build_model(directory, TinyModelSpec(name="tiny", version="1.0.0", seed=0))
    build_model(directory, TinyModelSpec(name="tiny", version="1.10.0", seed=1))
    build_model(directory, TinyModelSpec(name="ensemble", version="0.1.0", ensemble_members=4))
    return directory


@pytest.fixture(scope="session")
def api_settings(models_dir: Path) -> Settings:
    return Settings(
        models_dir=models_dir,
        default_model="tiny",
        max_upload_bytes=8 * 1024 * 1024,
        max_duration_s=120.0,
        log_json=False,
    )


@pytest.fixture(scope="session")
def app(api_settings: Settings) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture(scope="session")
def base_url(app: FastAPI) -> Iterator[str]:
    with LiveServer(app) as url:
        yield url


@pytest.fixture()
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60.0) as http:
        yield http


def real_speech_wav(name: str = "03-01-05-02-01-01-01.flac") -> bytes:
    """A real RAVDESS clip re-encoded as 16-bit WAV bytes."""
    signal, sampling_rate_hz = soundfile.read(ravdess_clip(name), dtype="float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, sampling_rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
