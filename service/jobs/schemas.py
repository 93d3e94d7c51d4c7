"""The pydantic contract of the job endpoints (and so of their part of ``openapi.yaml``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import ModelRef, PredictResponse

JobStateName = Literal["queued", "running", "succeeded", "failed", "canceled"]
FileStateName = Literal["pending", "succeeded", "failed", "canceled"]


class _Schema(BaseModel):
    model_config = ConfigDict(frozen=True)


class JobProgress(_Schema):
    """Files with an outcome (``done`` = ``succeeded`` + ``failed``) out of ``total``."""

    done: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=0)]
    succeeded: Annotated[int, Field(ge=0)]
    failed: Annotated[int, Field(ge=0)]


class FileProblem(_Schema):
    """Why one file has no result: the code, status and message ``/predict`` would answer."""

    code: str
    status: int
    title: str
    detail: str


class FileErrorEntry(FileProblem):
    index: int
    name: str


class JobCallback(_Schema):
    """``waiting`` until the job ends, then ``pending``/``queued``, ``delivered`` or ``failed``."""

    url: str
    state: Literal["waiting", "pending", "queued", "delivered", "failed"]
    attempts: int
    last_status: int | None


class JobLinks(_Schema):
    self: str
    results: str


class JobStatus(_Schema):
    """``GET /jobs/{id}``, the 202 answer of ``POST /jobs`` and the callback body."""

    id: str
    status: JobStateName = Field(
        description="queued, running, succeeded (every file has an outcome and at least one a "
        "result), failed (no file gave a result), canceled"
    )
    analysis: str = Field(description="What each file gets: `predict` (the /predict answer)")
    model: ModelRef
    progress: JobProgress
    errors: list[FileErrorEntry] = Field(description="The files that failed, with why")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime = Field(
        description="When the job, its audio and results are deleted (SER_JOB_RESULT_TTL_S "
        "after it ends; SER_JOB_PENDING_TTL_S after submission while it has not ended)"
    )
    callback: JobCallback | None
    links: JobLinks


class FileResult(_Schema):
    """One file of ``GET /jobs/{id}/results``; ``result`` is exactly the ``/predict`` answer."""

    index: int
    name: str
    status: FileStateName
    result: PredictResponse | None
    error: FileProblem | None


class JobResults(_Schema):
    """``GET /jobs/{id}/results?format=json``."""

    id: str
    status: JobStateName
    model: ModelRef
    files: list[FileResult]
