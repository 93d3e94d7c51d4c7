"""Settings from ``SER_*`` environment variables, validated once and frozen.

Built by :func:`get_settings`, never at import time, so tests and the worker can build their own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MEBIBYTE = 1024 * 1024
MIN_API_KEY_CHARS = 16


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
    malloc_arena_max: Annotated[int, Field(ge=0)] = 2
    """glibc malloc arenas of the API and worker processes (``service/allocator.py``): fewer
    arenas keep the memory of concurrent long uploads from piling up; 0 keeps glibc's default
    (8 per core). An explicit ``MALLOC_ARENA_MAX`` in the environment takes precedence."""
    max_batch_segments: Annotated[int, Field(gt=0)] = 8
    """Largest number of segments per model call: long audio is chunked so that the memory of
    one call stays bounded (ONNX Runtime's buffers grow with the batch and are kept)."""
    max_batch_audio_s: Annotated[float, Field(ge=0.0)] = 12.0
    """Most audio per model call, counted as the zero-padded batch (rows x longest row,
    seconds); a single segment always runs. Bounds the memory of a call whatever the window
    (two 6 s windows, four 3 s clips); 0: rows only (docs/benchmark.md, "Memory under long
    uploads")."""
    batch_wait_ms: Annotated[float, Field(ge=0.0, le=1000.0)] = 5.0
    """Micro-batching (``service/inference/batcher.py``): longest wait for other requests'
    segments to join a model call, only while such requests are being decoded; 0 disables
    micro-batching (each request calls the model itself)."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """uvicorn worker processes of ``python -m service``; above 1, Prometheus metrics are
    collected across them (multi-process mode) and they share one embedded job queue."""

    # Overload and access (docs/reliability.md)
    max_concurrent_requests: Annotated[int, Field(ge=1)] = 4
    """Analysis requests (POST /predict, /explain, /jobs) served at once by this process."""
    max_queued_requests: Annotated[int, Field(ge=0)] = 8
    """Analysis requests that may wait for a slot; more get ``503 overloaded``."""
    queue_timeout_s: Annotated[float, Field(gt=0.0)] = 10.0
    """Longest wait for a slot before ``503 overloaded``; also the ``Retry-After`` (rounded up)."""
    request_timeout_s: Annotated[float, Field(gt=0.0)] = 120.0
    """Longest time an admitted analysis request may take before ``503 request_timeout``."""
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Accepted API keys (comma-separated, 16+ characters each); empty: no authentication."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    # Batch jobs (docs/jobs.md)
    redis_url: str | None = None
    """Redis/Valkey for batch jobs; unset: ``python -m service`` starts the embedded Valkey."""
    redis_timeout_s: Annotated[float, Field(gt=0.0)] = 5.0
    """Connect and command timeout of the API's Redis calls (jobs answer 503 after it)."""
    job_queue: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "ser-jobs"
    """RQ queue name shared by the API and its workers."""
    job_max_files: Annotated[int, Field(gt=0)] = 1000
    job_max_audio_bytes: Annotated[int, Field(gt=0)] = 200 * MEBIBYTE
    """Largest total of audio bytes in one job (after unpacking an archive); kept in Redis."""
    job_result_ttl_s: Annotated[int, Field(gt=0)] = 24 * 3600
    """How long a finished or canceled job's status and results are kept."""
    job_pending_ttl_s: Annotated[int, Field(gt=0)] = 7 * 24 * 3600
    """How long an unfinished job (and its audio) may wait before it expires."""
    job_timeout_base_s: Annotated[float, Field(gt=0.0)] = 30.0
    job_timeout_per_audio_s: Annotated[float, Field(ge=0.0)] = 2.0
    """Per-file time limit = base + per_audio x audio duration (seconds)."""
    job_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Attempts per file when a worker crashes, times out or hits a server fault."""
    job_heartbeat_s: Annotated[int, Field(ge=1)] = 10
    """How often a worker proves it is alive while it processes a file."""
    job_abandoned_after_s: Annotated[int, Field(ge=1)] = 30
    """A file whose worker missed its heartbeat by this long is retried elsewhere."""
    job_maintenance_interval_s: Annotated[int, Field(ge=1)] = 15
    """How often workers look for abandoned files."""
    job_callback_hosts: Annotated[frozenset[str], NoDecode] = frozenset()
    """Host names a job's ``callback_url`` may point at (comma-separated); empty: none."""
    job_callback_secret: SecretStr | None = None
    """HMAC-SHA256 key signing callback bodies; required when callback hosts are set."""
    job_callback_timeout_s: Annotated[float, Field(gt=0.0)] = 5.0
    job_callback_attempts: Annotated[int, Field(ge=1, le=10)] = 4
    embedded_redis_dir: Path = REPOSITORY_ROOT / "var" / "valkey"
    """Data directory (append-only file) of the embedded Valkey."""
    embedded_redis_port: Annotated[int, Field(ge=1, le=65535)] = 6399
    embedded_workers: Annotated[int, Field(ge=0, le=64)] = 1
    """Supervised workers ``python -m service`` starts beside the embedded Valkey."""

    @field_validator("job_callback_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(host.strip().lower() for host in value.split(",") if host.strip())
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_are_long(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(key.get_secret_value()) < MIN_API_KEY_CHARS for key in keys):
            raise ValueError(
                f"every SER_API_KEYS entry must be at least {MIN_API_KEY_CHARS} characters"
            )
        return keys

    @model_validator(mode="after")
    def _callbacks_are_signed(self) -> Settings:
        if self.job_callback_hosts and self.job_callback_secret is None:
            raise ValueError(
                "SER_JOB_CALLBACK_HOSTS is set but SER_JOB_CALLBACK_SECRET is not: callbacks "
                "must be signed; set a secret of at least 16 characters"
            )
        secret = self.job_callback_secret
        if secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError("SER_JOB_CALLBACK_SECRET must be at least 16 characters")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
