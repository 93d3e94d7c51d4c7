"""Where the shared corpora are: ``../shared/data`` beside the checkout, or ``SER_DATA_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("SER_DATA_DIR", ROOT.parent / "shared" / "data"))


def ravdess_clip(name: str = "03-01-05-02-01-01-01.flac") -> Path:
    """A real RAVDESS clip (default: actor 01, angry, strong, statement 1)."""
    return shared_data_dir() / "ravdess" / "audio" / name
