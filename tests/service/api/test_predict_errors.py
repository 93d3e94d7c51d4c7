"""One test per error code of ``POST /predict``, over real HTTP; the service keeps serving."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile

from tests.service.api.conftest import real_speech_wav

PROBLEM = "application/problem+json"


def wav_bytes(signal: np.ndarray, sampling_rate_hz: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, sampling_rate_hz, format="WAV", subtype=subtype)
    return buffer.getvalue()


def assert_problem(response: httpx.Response, status: int, code: str, detail_part: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
    assert detail_part in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]


def post_file(
    client: httpx.Client, data: bytes, name: str = "clip.wav", **params: str
) -> httpx.Response:
    return client.post("/predict", files={"file": (name, data)}, params=params)


def test_wrong_content_type(client: httpx.Client) -> None:
    response = client.post("/predict", json={"file": "x"})
    assert_problem(response, 415, "wrong_content_type", "multipart/form-data")


def test_invalid_form(client: httpx.Client) -> None:
    response = client.post(
        "/predict",
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        headers={"content-type": "multipart/form-data"},
    )
    assert_problem(response, 400, "invalid_form", "multipart body could not be read")


def test_missing_field(client: httpx.Client) -> None:
    response = client.post("/predict", files={"audio": ("a.wav", b"RIFF")})
    assert_problem(response, 422, "unexpected_field", "'audio'")
    response = client.post(
        "/predict",
        files=[("file", (None, b"not a file"))],  # a text part named 'file'
    )
    assert_problem(response, 422, "missing_field", "must be a file part")


def test_missing_file_in_empty_multipart(client: httpx.Client) -> None:
    response = client.post(
        "/predict",
        content=b"--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert_problem(response, 422, "missing_field", "no 'file' field")


def test_repeated_file_field(client: httpx.Client) -> None:
    clip = real_speech_wav()
    response = client.post("/predict", files=[("file", ("a.wav", clip)), ("file", ("b.wav", clip))])
    assert_problem(response, 422, "unexpected_field", "sent 2 times")


def test_payload_too_large_declared(client: httpx.Client) -> None:
    response = post_file(client, b"\0" * (9 * 1024 * 1024))
    assert_problem(response, 413, "payload_too_large", "SER_MAX_UPLOAD_BYTES")


def test_payload_too_large_streamed_without_length(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(10):
            yield b"\0" * (1024 * 1024)
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_problem(response, 413, "payload_too_large", "the limit is 8388608 bytes")


def test_empty_file(client: httpx.Client) -> None:
    assert_problem(post_file(client, b""), 422, "empty_audio", "")


def test_not_audio(client: httpx.Client) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    assert_problem(post_file(client, png, "a.png"), 415, "not_audio", "PNG")


def test_unsupported_format(client: httpx.Client) -> None:
    noise = np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes()
    assert_problem(post_file(client, noise), 415, "unsupported_format", "WAV")


def test_corrupt_audio(client: httpx.Client) -> None:
    clip = real_speech_wav()
    corrupt = clip[:44] + b"\xff" * 10 + clip[44:60]
    broken_header = b"RIFF\x10\x00\x00\x00WAVEfmt \x02\x00\x00\x00\x01\x00"
    assert_problem(post_file(client, broken_header), 422, "corrupt_audio", "")
    response = post_file(client, corrupt)
    assert response.status_code in (422,), response.text
    assert response.json()["code"] in ("corrupt_audio", "audio_too_short")


def test_invalid_samples(client: httpx.Client) -> None:
    signal = np.full(16000, 0.1, dtype=np.float32)
    signal[100] = np.nan
    response = post_file(client, wav_bytes(signal, 16000, "FLOAT"))
    assert_problem(response, 422, "invalid_samples", "NaN")


def test_sampling_rate_too_low(client: httpx.Client) -> None:
    response = post_file(client, wav_bytes(np.zeros(8000, dtype=np.float32), 4000))
    assert_problem(response, 422, "sampling_rate_too_low", "8000")


def test_audio_too_short(client: httpx.Client) -> None:
    response = post_file(client, wav_bytes(np.full(1600, 0.1, dtype=np.float32), 16000))
    assert_problem(response, 422, "audio_too_short", "0.100 s")


def test_audio_too_long(client: httpx.Client) -> None:
    response = post_file(client, wav_bytes(np.zeros(8000 * 130, dtype=np.float32), 8000))
    assert_problem(response, 413, "audio_too_long", "120")


def test_no_speech(client: httpx.Client) -> None:
    silence = wav_bytes(np.zeros(32000, dtype=np.float32), 16000)
    assert_problem(post_file(client, silence), 422, "no_speech", "speech")


def test_unknown_model(client: httpx.Client) -> None:
    response = post_file(client, real_speech_wav(), model="nope")
    assert_problem(response, 404, "unknown_model", "choose one of")


@pytest.mark.parametrize("reference", ["../../etc/passwd", "tiny@", "A" * 200, "tiny/1.0.0"])
def test_invalid_model_parameter(client: httpx.Client, reference: str) -> None:
    response = post_file(client, real_speech_wav(), model=reference)
    assert_problem(response, 422, "invalid_parameter", "model")


def test_service_keeps_serving_after_every_error(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    response = post_file(client, real_speech_wav())
    assert response.status_code == 200, response.text


def test_too_many_channels(client: httpx.Client) -> None:
    signal = np.zeros((8000, 40), dtype=np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, 8000, format="WAV", subtype="PCM_16")
    response = post_file(client, buffer.getvalue())
    assert_problem(response, 422, "too_many_channels", "40")
