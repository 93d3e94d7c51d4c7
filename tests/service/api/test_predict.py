"""``POST /predict`` on real speech in every supported format, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
import soxr

from tests.audio_factory import FORMATS, load_clip
from tests.data_paths import ravdess_clip

CLIP = "03-01-05-02-01-01-01.flac"  # RAVDESS actor 01, angry, strong intensity
STAGES = {"decode", "resample", "speech_activity", "quality", "inference", "postprocess", "total"}


def clip_at(rate_hz: int, channels: int, name: str = CLIP) -> np.ndarray:
    """The real clip resampled to ``rate_hz``, copied to ``channels``: ``(channels, samples)``."""
    signal, source_rate_hz = load_clip(ravdess_clip(name))
    mono = soxr.resample(signal[0], source_rate_hz, rate_hz).astype(np.float32)
    return np.tile(mono, (channels, 1))


def predict(client: httpx.Client, data: bytes, **params: str) -> dict[str, Any]:
    response = client.post("/predict", files={"file": ("clip", data)}, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def assert_complete(body: dict[str, Any], labels_count: int = 6) -> None:
    assert body["model"]["name"] == "tiny" and len(body["model"]["sha256"]) == 64
    assert len(body["probabilities"]) == labels_count
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(body["distribution"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["confidence"] == pytest.approx(body["probabilities"][body["label"]])
    assert all(0.0 <= body["vad"][key] <= 1.0 for key in ("valence", "arousal", "dominance"))
    assert body["sphere"]["octant"] in {"I", "II", "III", "IV", "V", "VI", "VII", "VIII"}
    assert 0.0 <= body["sphere"]["intensity"] <= 1.0
    assert body["uncertainty"]["measure"] == "entropy"
    assert set(body["mixed"]) == {"is_blend", "components", "entropy"}
    quality = body["quality"]
    assert 0.3 < quality["speech_ratio"] <= 1.0
    assert quality["duration_s"] == pytest.approx(body["audio"]["duration_s"])
    assert set(body["timing_ms"]) == STAGES
    assert len(body["segments"]) >= 1


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_real_clip_in_every_format(client: httpx.Client, format_name: str) -> None:
    audio_format = FORMATS[format_name]
    channels = max(audio_format.channel_counts)
    rate_hz = {"ogg_opus": 48000, "webm_opus": 48000, "wav_double": 22050}.get(format_name, 44100)
    signal = clip_at(rate_hz, channels)
    body = predict(client, audio_format.encode(signal, rate_hz))
    assert_complete(body)
    assert body["audio"]["container"] == audio_format.container
    assert body["audio"]["codec"] == audio_format.codec
    assert body["audio"]["channels"] == channels
    expected_s = signal.shape[1] / rate_hz
    assert body["quality"]["duration_s"] == pytest.approx(expected_s, abs=audio_format.tolerance_s)


def test_lossless_formats_give_the_same_answer(client: httpx.Client) -> None:
    signal = clip_at(16000, 1)
    wav = predict(client, FORMATS["wav_pcm_16"].encode(signal, 16000))
    flac = predict(client, FORMATS["flac"].encode(signal, 16000))
    for label, probability in wav["probabilities"].items():
        assert flac["probabilities"][label] == pytest.approx(probability, abs=1e-6)


def test_telephone_audio_is_flagged(client: httpx.Client) -> None:
    body = predict(client, FORMATS["wav_pcm_16"].encode(clip_at(8000, 1), 8000))
    assert_complete(body)
    assert "telephone_band" in body["quality"]["warnings"]
    assert body["audio"]["sampling_rate_hz"] == 8000


def test_long_audio_is_segmented_and_aggregated(client: httpx.Client) -> None:
    names = [
        CLIP,
        "03-01-03-02-01-01-01.flac",
        "03-01-04-02-01-01-01.flac",
        "03-01-01-01-01-01-01.flac",
        "03-01-06-02-02-01-01.flac",
    ]
    signal = np.concatenate([clip_at(16000, 1, name) for name in names], axis=1)
    body = predict(client, FORMATS["flac"].encode(signal, 16000))
    segments = body["segments"]
    assert isinstance(segments, list) and len(segments) >= 3
    duration_s = signal.shape[1] / 16000
    for segment in segments:
        assert 0.0 <= segment["start_s"] < segment["end_s"] <= duration_s + 1e-6
        assert segment["end_s"] - segment["start_s"] <= 4.0 + 1e-6
        assert sum(segment["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    weights = np.array([s["end_s"] - s["start_s"] for s in segments])
    for label, probability in body["probabilities"].items():
        segment_values = np.array([s["probabilities"][label] for s in segments])
        expected = float(np.dot(weights, segment_values) / weights.sum())
        assert probability == pytest.approx(expected, abs=1e-6)
    assert "duration-weighted" in str(body["aggregation"])


def test_model_can_be_picked_by_name_and_version(client: httpx.Client) -> None:
    data = FORMATS["wav_pcm_16"].encode(clip_at(16000, 1), 16000)
    old = predict(client, data, model="tiny@1.0.0")
    new = predict(client, data, model="tiny")
    assert old["model"]["version"] == "1.0.0"
    assert new["model"]["version"] == "1.10.0"
    assert old["model"]["sha256"] != new["model"]["sha256"]
    assert old["probabilities"] != new["probabilities"]


def test_ensemble_model_reports_mutual_information(client: httpx.Client) -> None:
    body = predict(client, FORMATS["wav_pcm_16"].encode(clip_at(16000, 1), 16000), model="ensemble")
    uncertainty = body["uncertainty"]
    assert uncertainty["measure"] == "ensemble_mutual_information"
    assert uncertainty["abstain"] == (uncertainty["value"] > uncertainty["threshold"])


def test_request_id_from_the_client_is_kept(client: httpx.Client) -> None:
    data = FORMATS["wav_pcm_16"].encode(clip_at(16000, 1), 16000)
    response = client.post(
        "/predict", files={"file": ("a.wav", data)}, headers={"X-Request-ID": "trace-42"}
    )
    assert response.json()["request_id"] == "trace-42"
    assert response.headers["X-Request-ID"] == "trace-42"


def test_predictions_and_stage_times_reach_metrics(client: httpx.Client) -> None:
    predict(client, FORMATS["wav_pcm_16"].encode(clip_at(16000, 1), 16000))
    text = client.get("/metrics").text
    assert 'ser_stage_duration_seconds_count{stage="inference"}' in text
    assert "ser_predictions_total{label=" in text
    assert 'ser_http_requests_total{method="POST",route="/predict",status="200"}' in text
