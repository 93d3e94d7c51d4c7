"""A real server fault is a 500 problem logged with the request id; the service keeps serving."""

from __future__ import annotations

import logging

import httpx
import numpy as np
import pytest

from service.inference.session import ModelOutputs, OnnxModel
from tests.service.api.conftest import real_speech_wav


def test_model_failure_is_a_logged_500(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_run(self: OnnxModel, waveforms: np.ndarray, lengths: np.ndarray) -> ModelOutputs:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(OnnxModel, "run", broken_run)
    with caplog.at_level(logging.ERROR):
        response = client.post(
            "/predict",
            files={"file": ("a.wav", real_speech_wav())},
            headers={"X-Request-ID": "fault-1"},
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "internal_error" and body["request_id"] == "fault-1"
    assert "injected fault" not in body["detail"], "internals must not leak to clients"
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == "fault-1"]
    assert any(r.levelno == logging.ERROR and r.exc_info for r in logged)
    monkeypatch.undo()
    assert client.post("/predict", files={"file": ("a.wav", real_speech_wav())}).status_code == 200
