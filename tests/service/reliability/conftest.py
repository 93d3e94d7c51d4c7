"""The live API server (``tests/service/api``), the job stack with a real embedded Valkey and
real workers (``tests/service/jobs``), and the hostile-input corpus built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio_factory import load_clip
from tests.service.api.conftest import api_settings, app, base_url, models_dir
from tests.service.jobs.conftest import (
    jobs_client,
    jobs_models_dir,
    jobs_url,
    shared_queue,
    shared_workers,
    valkey,
)
from tests.service.reliability.corpus import HostileRequest, Speech, build_corpus

__all__ = [  # fixtures re-exported from the API and job test packages
    "api_settings",
    "app",
    "base_url",
    "jobs_client",
    "jobs_models_dir",
    "jobs_url",
    "models_dir",
    "shared_queue",
    "shared_workers",
    "valkey",
]


@pytest.fixture(scope="session")
def speech(data_dir: Path) -> Speech:
    """A real RAVDESS clip (actor 01, angry, 4.1 s at 16 kHz), mono."""
    signal, sampling_rate_hz = load_clip(
        data_dir / "ravdess" / "audio" / "03-01-05-02-01-01-01.flac"
    )
    return Speech(signal[0], sampling_rate_hz)


@pytest.fixture(scope="session")
def corpus(speech: Speech) -> dict[str, HostileRequest]:
    return build_corpus(speech)
