"""The models shipped in ``models/`` load and answer real speech in every listed format."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile

from service.api.app import create_app
from service.config import REPOSITORY_ROOT, Settings
from service.inference.manifest import read_manifest
from tests.audio_factory import FORMATS
from tests.service.api.conftest import LiveServer, ravdess_clip, real_speech_wav
from tests.service.api.test_predict import clip_at

LISTED_FORMATS = (
    "wav_pcm_16",
    "wav_float",
    "flac",
    "mp3",
    "ogg_vorbis",
    "ogg_opus",
    "m4a_aac",
    "webm_opus",
)


@pytest.fixture(scope="module")
def shipped_client() -> Iterator[httpx.Client]:
    settings = Settings(models_dir=REPOSITORY_ROOT / "models", log_json=False, redis_url=None)
    with LiveServer(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_every_shipped_model_is_listed(shipped_client: httpx.Client) -> None:
    models = shipped_client.get("/models").json()["models"]
    assert models, "models/ must ship at least one model"
    assert sum(model["default"] for model in models) == 1
    for model in models:
        assert model["metrics"], f"{model['name']} has no headline metrics"
        assert model["metrics_protocol"], f"{model['name']} does not name its split"


@pytest.mark.parametrize("format_name", LISTED_FORMATS)
def test_default_model_answers_each_format(shipped_client: httpx.Client, format_name: str) -> None:
    audio_format = FORMATS[format_name]
    rate_hz = 48000 if "opus" in format_name else 44100
    data = audio_format.encode(clip_at(rate_hz, 2), rate_hz)
    response = shipped_client.post("/predict", files={"file": ("clip", data)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in body["probabilities"]
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(body["distribution"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["vad"] is not None and body["sphere"] is not None
    assert body["quality"]["speech_ratio"] > 0.3
    assert body["audio"]["codec"] == audio_format.codec


SHIPPED_KEYS = sorted(
    f"{path.parent.parent.name}@{path.parent.name}"
    for path in (REPOSITORY_ROOT / "models").glob("*/*/manifest.json")
)


@pytest.mark.parametrize("model_key", SHIPPED_KEYS)
def test_every_shipped_model_predicts_and_explains_real_speech(
    shipped_client: httpx.Client, model_key: str
) -> None:
    clip = real_speech_wav()
    predicted = shipped_client.post(
        "/predict", params={"model": model_key}, files={"file": ("clip.wav", clip)}
    )
    assert predicted.status_code == 200, predicted.text
    assert (
        f"{predicted.json()['model']['name']}@{predicted.json()['model']['version']}" == model_key
    )
    explained = shipped_client.post(
        "/explain",
        params={"model": model_key, "gender": "male"},
        files={"file": ("clip.wav", clip)},
    )
    assert explained.status_code == 200, explained.text
    explanation = explained.json()["explanation"]
    assert explanation["regions"], "no salient regions"
    referenced = [c for c in explanation["cues"] if c["z"] is not None]
    assert len(referenced) >= 8
    assert explanation["norms"]["source"] == "model manifest"


def test_the_default_cuts_long_silence_around_a_short_recording(
    shipped_client: httpx.Client,
) -> None:
    """The default's manifest asks for its speech with 1.02 s of silence a side: with 0.9 s of
    digital silence added before and after a 4.1 s RAVDESS clip (5.9 s, one window), its one
    segment starts and ends within the recording, where served whole it would be all of it."""
    signal, rate_hz = soundfile.read(ravdess_clip("03-01-05-02-01-01-01.flac"), dtype="float32")
    silence = np.zeros(int(0.9 * rate_hz), dtype=np.float32)
    padded = np.concatenate([silence, signal, silence])
    buffer = io.BytesIO()
    soundfile.write(buffer, padded, rate_hz, format="WAV", subtype="PCM_16")
    response = shipped_client.post("/predict", files={"file": ("padded.wav", buffer.getvalue())})
    assert response.status_code == 200, response.text
    body = response.json()
    manifest = read_manifest(
        REPOSITORY_ROOT / "models" / body["model"]["name"] / body["model"]["version"]
    )
    assert manifest.windowing.crop_to_speech
    assert manifest.windowing.crop_margin_s == pytest.approx(1.02)
    duration_s = len(padded) / rate_hz
    [segment] = body["segments"]
    # the clip's own speech starts and ends about a second in from its ends (0.9 s lead-in)
    assert 0.25 < segment["start_s"] < 0.9
    assert duration_s - 0.9 < segment["end_s"] < duration_s - 0.25
