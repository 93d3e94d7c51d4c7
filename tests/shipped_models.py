"""Where the shipped default model is: ``models/<name from models/DEFAULT>/<its one version>``."""

from __future__ import annotations

from pathlib import Path

from service.inference.registry import shipped_default

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def shipped_default_dir() -> Path:
    """The default model's directory; tests that re-render its card copy it from here."""
    name = shipped_default(MODELS_DIR)
    assert name is not None, f"{MODELS_DIR}/DEFAULT names no model"
    [version_dir] = [path for path in (MODELS_DIR / name).iterdir() if path.is_dir()]
    return version_dir
