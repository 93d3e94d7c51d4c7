"""``POST /explain`` over real HTTP: the /predict answer plus the explanation, figures, and the
same problem documents as /predict for bad input."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from service.explain.cues import CUE_UNITS
from tests.data_paths import ravdess_clip
from tests.service.api.conftest import real_speech_wav
from tests.service.api.test_predict_errors import assert_problem, wav_bytes

MIN_MEASURED_CUES = 8
MODEL = "tiny@1.0.0"
"""On the test clip, occluding speech lowers this tiny model's top label (tiny@1.10.0's top
label only rises when energy is removed: see ``test_no_supporting_tile_is_said``)."""
VOLATILE = {"request_id", "timing_ms"}


def explain(client: httpx.Client, data: bytes, **params: str) -> httpx.Response:
    return client.post("/explain", files={"file": ("clip.wav", data)}, params=params)


def explained(client: httpx.Client, data: bytes, **params: str) -> dict[str, Any]:
    response = explain(client, data, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def clip() -> bytes:
    return real_speech_wav()


@pytest.fixture(scope="module")
def body(base_url: str, clip: bytes) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=60.0) as http:
        return explained(http, clip, model=MODEL)


def test_the_prediction_is_exactly_what_predict_returns(
    client: httpx.Client, clip: bytes, body: dict[str, Any]
) -> None:
    response = client.post("/predict", files={"file": ("clip.wav", clip)}, params={"model": MODEL})
    predicted = response.json()
    for key, value in predicted.items():
        if key not in VOLATILE:
            assert body[key] == value, key
    assert set(body) == set(predicted) | {"explanation"}


def test_regions_cues_references_and_consistency(body: dict[str, Any]) -> None:
    explanation = body["explanation"]
    assert explanation["label"] == body["label"]
    regions = explanation["regions"]
    assert regions, "a real clip has salient regions"
    duration_s = body["audio"]["duration_s"]
    for region in regions:
        assert 0.0 <= region["start_s"] < region["end_s"] <= duration_s + 1e-6
        assert 0.0 <= region["low_hz"] < region["high_hz"] <= 8000.0
        assert 0.0 < region["weight"] <= 1.0
    assert [r["weight"] for r in regions] == sorted((r["weight"] for r in regions), reverse=True)
    spans = explanation["cue_spans"]
    assert spans and all(span["start_s"] < span["end_s"] for span in spans)
    top = regions[0]
    assert any(s["start_s"] <= top["start_s"] and top["end_s"] <= s["end_s"] for s in spans)
    cues = explanation["cues"]
    assert [cue["name"] for cue in cues] == list(CUE_UNITS)
    measured = [c for c in cues if c["value"] is not None and c["reference"] is not None]
    assert len(measured) >= MIN_MEASURED_CUES
    for cue in measured:
        reference = cue["reference"]
        if reference["std"] > 0:
            z = (cue["value"] - reference["mean"]) / reference["std"]
            assert cue["z"] == pytest.approx(z)
    directional = [c for c in cues if c["expected"] != "either" and c["z"] is not None]
    for cue in directional:
        assert cue["consistent"] == ((cue["z"] > 0) == (cue["expected"] == "higher"))
        assert cue["source"]
    if directional:
        share = sum(c["consistent"] for c in directional) / len(directional)
        assert explanation["consistency_score"] == pytest.approx(share)
    assert explanation["cues_compared"] == len(directional)


def test_runner_up_summary_norms_and_method(body: dict[str, Any]) -> None:
    explanation = body["explanation"]
    ranked = sorted(body["probabilities"], key=body["probabilities"].get, reverse=True)
    assert explanation["runner_up"]["label"] == ranked[1]
    assert explanation["runner_up"]["probability"] == pytest.approx(
        body["probabilities"][ranked[1]]
    )
    assert body["label"] in explanation["summary"]
    assert explanation["norms"] == {
        "group": "pooled",
        "source": "built-in (RAVDESS + EmoDB neutral clips)",
    }
    assert any("gender" in note for note in explanation["notes"])
    assert any("no cue norms" in note for note in explanation["notes"])
    saliency = explanation["saliency"]
    assert saliency["attention"] is True  # the tiny model has a frame-attention head
    assert saliency["time_tiles"] * saliency["frequency_bands"] >= 24
    assert set(explanation["timing_ms"]) == {"saliency", "cues"}


def test_gender_selects_the_norms(client: httpx.Client, clip: bytes) -> None:
    female = explained(client, clip, gender="female", model=MODEL)["explanation"]
    male = explained(client, clip, gender="male", model=MODEL)["explanation"]
    assert female["norms"]["group"] == "female" and male["norms"]["group"] == "male"
    f0 = {e["norms"]["group"]: e["cues"][0] for e in (female, male)}
    assert f0["female"]["reference"]["mean"] > f0["male"]["reference"]["mean"] + 5  # semitones
    assert f0["female"]["value"] == f0["male"]["value"]


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"),
    [
        ("png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("svg", "image/svg+xml", b"<?xml"),
    ],
)
def test_figure_on_request(
    client: httpx.Client, clip: bytes, fmt: str, media_type: str, magic: bytes
) -> None:
    response = explain(client, clip, format=fmt, model=MODEL)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.content.startswith(magic)
    assert len(response.content) > 20_000
    assert response.headers["X-Request-ID"]


def test_emodb_clip_and_other_rates(client: httpx.Client, data_dir: Any) -> None:
    path = sorted((data_dir / "emodb" / "audio").iterdir())[0]
    signal, rate_hz = soundfile.read(path, dtype="float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate_hz, format="FLAC")
    body = explained(client, buffer.getvalue(), model=MODEL)
    measured = [c for c in body["explanation"]["cues"] if c["value"] is not None]
    assert len(measured) >= MIN_MEASURED_CUES


def test_no_supporting_tile_is_said(client: httpx.Client, clip: bytes) -> None:
    """The default tiny model's top label only rises when energy is occluded: no regions, a
    note, and the cues are measured over all of the speech."""
    explanation = explained(client, clip)["explanation"]
    assert explanation["regions"] == []
    assert any("no tile lowered" in note for note in explanation["notes"])
    assert sum(c["value"] is not None for c in explanation["cues"]) >= MIN_MEASURED_CUES


def test_telephone_audio_gets_a_note(client: httpx.Client) -> None:
    import soxr

    signal, rate_hz = soundfile.read(ravdess_clip(), dtype="float32")
    narrow = soxr.resample(signal, rate_hz, 8000)
    body = explained(client, wav_bytes(narrow, 8000))
    assert any("telephone-band" in note for note in body["explanation"]["notes"])


# --- bad input: the same problem documents as /predict ------------------------------------------


def test_wrong_content_type(client: httpx.Client) -> None:
    response = client.post("/explain", json={"file": "x"})
    assert_problem(response, 415, "wrong_content_type", "multipart/form-data")


def test_empty_and_not_audio(client: httpx.Client) -> None:
    assert_problem(explain(client, b""), 422, "empty_audio", "")
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    assert_problem(explain(client, png), 415, "not_audio", "PNG")


def test_no_speech_and_too_short(client: httpx.Client) -> None:
    silence = wav_bytes(np.zeros(32000, dtype=np.float32), 16000)
    assert_problem(explain(client, silence), 422, "no_speech", "speech")
    short = wav_bytes(np.full(1600, 0.1, dtype=np.float32), 16000)
    assert_problem(explain(client, short), 422, "audio_too_short", "0.100 s")


def test_unknown_model_and_bad_parameters(client: httpx.Client, clip: bytes) -> None:
    assert_problem(explain(client, clip, model="nope"), 404, "unknown_model", "nope")
    assert_problem(explain(client, clip, gender="other"), 422, "invalid_parameter", "gender")
    assert_problem(explain(client, clip, format="gif"), 422, "invalid_parameter", "format")


def test_longer_than_explanations_take(client: httpx.Client) -> None:
    signal, rate_hz = soundfile.read(ravdess_clip(), dtype="float32")
    long = np.tile(signal, 16)  # 65 s of speech
    response = explain(client, wav_bytes(long, rate_hz))
    assert_problem(response, 413, "audio_too_long", "up to 60 s")
    assert client.get("/healthz").status_code == 200
