"""The models shipped in ``models/`` load and answer real speech in every listed format."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.api.app import create_app
from service.config import REPOSITORY_ROOT, Settings
from tests.audio_factory import FORMATS
from tests.service.api.conftest import LiveServer, real_speech_wav
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
