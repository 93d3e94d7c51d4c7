"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data_paths import shared_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared corpora (``../shared/data`` beside the checkout, or ``SER_DATA_DIR``)."""
    path = shared_data_dir()
    if not (path / "ravdess" / "metadata.csv").is_file():
        pytest.fail(f"shared corpora not found at {path}; set SER_DATA_DIR to their directory")
    return path
