"""Settings from ``SER_*`` environment variables, validated once and frozen.

Built by :func:`get_settings`, never at import time, so tests and the worker can build their own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MEBIBYTE = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of the service; the environment variable is ``SER_`` + the upper-case name."""

    model_config = SettingsConfigDict(env_prefix="SER_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    models_dir: Path = REPOSITORY_ROOT / "models"
    default_model: str | None = None
    """``name`` or ``name@version``; ``None`` takes the first model in name order."""

    max_upload_bytes: Annotated[int, Field(gt=0)] = 50 * MEBIBYTE
    """Largest request body accepted; enforced while the body streams in."""
    max_form_field_bytes: Annotated[int, Field(gt=0)] = 64 * 1024
    """Largest non-file form field (multipart); larger ones are refused."""
    min_duration_s: Annotated[float, Field(gt=0.0)] = 0.3
    max_duration_s: Annotated[float, Field(gt=0.0)] = 600.0
    min_speech_s: Annotated[float, Field(ge=0.0)] = 0.25
    """Less detected speech than this gives ``no_speech`` (422) when ``reject_no_speech``."""
    reject_no_speech: bool = True
    speech_aggressiveness: Annotated[int, Field(ge=0, le=3)] = 2
    """WebRTC speech-activity aggressiveness, 0 (keeps most) .. 3 (drops most)."""

    onnx_intra_op_threads: Annotated[int, Field(ge=0)] = 1
    """Threads per ONNX Runtime session call; 0 lets ONNX Runtime choose."""
    max_batch_segments: Annotated[int, Field(gt=0)] = 64
    """Largest number of segments sent to the model in one call (long audio is chunked)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
