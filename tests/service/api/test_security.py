"""Security over real HTTP: optional API keys, no file-system path from ``?model=``, uploads'
temporary files confined and removed, CORS off by default."""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydantic
import pytest
import soundfile
from pydantic import SecretStr

from service.api.app import create_app
from service.api.auth import key_matches
from service.config import Settings
from tests.service.api.conftest import LiveServer, real_speech_wav

PROBLEM = "application/problem+json"
KEYS = ("first-key-0123456789abcdef", "second-key-0123456789abcdef")


def assert_unauthorized(response: httpx.Response, detail_part: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.json()["code"] == "unauthorized"
    assert detail_part in response.json()["detail"]


@pytest.fixture(scope="module")
def keyed_url(models_dir: Path) -> Iterator[str]:
    settings = Settings(
        models_dir=models_dir, default_model="tiny", log_json=False, api_keys=",".join(KEYS)
    )
    with LiveServer(create_app(settings)) as url:
        yield url


@pytest.fixture()
def keyed(keyed_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed_url, timeout=60.0) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/predict"),
        ("POST", "/explain"),
        ("POST", "/jobs"),
        ("GET", "/jobs/" + "0" * 32),
        ("GET", "/models"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/no-such-route"),
    ],
)
def test_every_route_but_the_probes_needs_a_key(
    keyed: httpx.Client, method: str, path: str
) -> None:
    assert_unauthorized(keyed.request(method, path), "needs an API key")


def test_probes_answer_without_a_key(keyed: httpx.Client) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-key-0123456789abcdef"},
        {"X-API-Key": KEYS[0][:-1]},  # a prefix of a real key
        {"X-API-Key": KEYS[0] + "x"},
        {"Authorization": "Basic " + KEYS[0]},  # not the bearer scheme, and no X-API-Key
    ],
)
def test_wrong_keys_are_refused(keyed: httpx.Client, headers: dict[str, str]) -> None:
    response = keyed.get("/models", headers=headers)
    expected = "needs an API key" if headers.get("Authorization", "").startswith("Basic") else ""
    assert_unauthorized(response, expected or "not valid")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEYS[0]}"},
        {"Authorization": f"bearer {KEYS[1]}"},
        {"X-API-Key": KEYS[1]},
    ],
)
def test_a_valid_key_is_served(keyed: httpx.Client, headers: dict[str, str]) -> None:
    response = keyed.post(
        "/predict", files={"file": ("clip.wav", real_speech_wav())}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["label"]
    assert keyed.get("/metrics", headers=headers).status_code == 200


def test_keys_are_never_logged(keyed: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        keyed.get("/models", headers={"X-API-Key": KEYS[0]})
        keyed.get("/models", headers={"Authorization": f"Bearer {KEYS[1]}"})
        keyed.get("/models", headers={"X-API-Key": "wrong-key-0123456789abcdef"})
    assert len(caplog.records) >= 3
    for secret in (*KEYS, "wrong-key-0123456789abcdef"):
        assert secret not in caplog.text
    settings = Settings(api_keys=",".join(KEYS))
    assert all(key not in repr(settings) + str(settings.model_dump()) for key in KEYS)


def test_short_keys_are_refused_at_start_up() -> None:
    with pytest.raises(pydantic.ValidationError, match="at least 16 characters"):
        Settings(api_keys="short")


def test_key_matching_compares_whole_keys() -> None:
    keys = [key.encode() for key in KEYS]
    assert key_matches(KEYS[1], keys)
    assert not key_matches(KEYS[1][:-1], keys)
    assert not key_matches("", keys)
    assert not key_matches("ключ-0123456789abcdef", keys)  # non-ASCII is compared, not raised
    assert Settings(api_keys=f" {KEYS[0]} ,, {KEYS[1]}").api_keys == tuple(
        SecretStr(key) for key in KEYS
    )


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("../../etc/passwd", 422, "invalid_parameter"),
        ("tiny/../../../etc/passwd", 422, "invalid_parameter"),
        ("tiny@../1.0.0", 422, "invalid_parameter"),
        ("/etc/passwd", 422, "invalid_parameter"),
        ("..", 422, "invalid_parameter"),
        ("tiny..", 404, "unknown_model"),  # matches the name pattern, names no served model
        ("tiny@1.0.0.", 404, "unknown_model"),
        ("model.onnx", 404, "unknown_model"),
        ("manifest.json", 404, "unknown_model"),
    ],
)
def test_model_names_never_reach_the_file_system(
    client: httpx.Client, model: str, status: int, code: str
) -> None:
    response = client.post(
        "/predict", params={"model": model}, files={"file": ("clip.wav", real_speech_wav())}
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def long_speech_wav(min_bytes: int) -> bytes:
    """Real speech repeated until its 16-bit WAV is at least ``min_bytes`` long."""
    signal, sampling_rate_hz = soundfile.read(io.BytesIO(real_speech_wav()), dtype="float32")
    repeats = 1 + min_bytes // (2 * signal.shape[0])
    buffer = io.BytesIO()
    soundfile.write(buffer, np.tile(signal, repeats), sampling_rate_hz, format="WAV")
    return buffer.getvalue()


def open_files_under(directory: Path) -> list[str]:
    """Targets of this process's open file descriptors that lie in ``directory``."""
    targets = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            targets.append(str(fd.readlink()))
        except OSError:
            continue
    return [target for target in targets if target.startswith(str(directory))]


def test_upload_spool_files_are_confined_and_removed(
    client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads over 1 MiB are spooled by the multipart parser to an anonymous file in the
    temporary directory; none is left there or left open after the answer."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    audio = long_speech_wav(1024 * 1024 + 65536)
    for path in ("/predict", "/explain"):
        response = client.post(path, files={"file": ("long.wav", audio)})
        assert response.status_code == 200, response.text
    response = client.post("/predict", files={"file": ("long.wav", audio[:-7] + b"garbage")})
    assert response.status_code in (200, 422)
    assert list(tmp_path.iterdir()) == []
    assert open_files_under(tmp_path) == []


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    origin = {"Origin": "https://attacker.example"}
    response = client.get("/models", headers=origin)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/predict", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405
    assert not any(name.startswith("access-control-") for name in preflight.headers)
