"""Plain data of the batch jobs: options, uploaded files, the job record and file outcomes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from service.errors import ServiceError
from service.jobs.keys import JobState

Analysis = Literal["predict", "explain"]
"""What a job computes per file: the body of ``POST /predict`` or of ``POST /explain`` (JSON,
pooled neutral-speech norms); the worker picks it by name (``service.jobs.tasks.ANALYSES``)."""


@dataclass(frozen=True)
class JobOptions:
    """Per-job options, stored with the job and applied by the worker to every file."""

    analysis: Analysis = "predict"

    def to_json(self) -> str:
        return json.dumps({"analysis": self.analysis})

    @classmethod
    def from_json(cls, text: str) -> JobOptions:
        values = json.loads(text)
        return cls(analysis=values.get("analysis", "predict"))


@dataclass(frozen=True)
class NewFile:
    """One file of a submission: its name (a label, never a path) and bytes.

    ``duration_s`` is read from the container header when it can be (``None`` otherwise) and
    sets the file's time limit.
    """

    name: str
    data: bytes
    duration_s: float | None


@dataclass(frozen=True)
class ModelChoice:
    """The exact model a job was submitted for; workers refuse any other sha256."""

    name: str
    version: str
    sha256: str
    labels: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class JobRecord:
    """The stored job, as read back for ``GET /jobs/{id}`` and by workers.

    Times are seconds since the Unix epoch on the Redis server's clock.
    """

    job_id: str
    status: JobState
    total: int
    done: int
    failed: int
    created_at_s: float
    started_at_s: float | None
    finished_at_s: float | None
    expires_at_s: float
    model: ModelChoice
    options: JobOptions
    request_id: str
    callback_url: str | None = None
    callback_state: str | None = None
    callback_attempts: int = 0
    callback_status: int | None = None


@dataclass(frozen=True)
class FileError:
    """A per-file error: the same code, status, title and detail ``/predict`` would answer."""

    code: str
    status: int
    title: str
    detail: str

    @classmethod
    def of(cls, error: ServiceError) -> FileError:
        return cls(code=error.code, status=error.status, title=error.title, detail=error.detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class FileOutcome:
    """What one file ended as: the ``/predict`` body, or an error."""

    result: dict[str, Any] | None = None
    error: FileError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        if self.error is not None:
            return json.dumps({"status": "failed", "error": self.error.as_dict()})
        return json.dumps({"status": "succeeded", "result": self.result})

    @classmethod
    def from_json(cls, text: str | bytes) -> FileOutcome:
        values = json.loads(text)
        if values["status"] == "failed":
            return cls(error=FileError(**values["error"]))
        return cls(result=values["result"])
