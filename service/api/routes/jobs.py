"""Batch jobs: POST /jobs, GET /jobs/{id}, GET /jobs/{id}/results, DELETE /jobs/{id}."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import RequestIdDep, SelectedModelDep, SettingsDep
from service.jobs import presenters
from service.jobs.callbacks import MAX_URL_CHARS, check_callback_url
from service.jobs.manager import JobManager, Submission
from service.jobs.models import Analysis, JobOptions
from service.jobs.schemas import JobResults, JobStatus
from service.jobs.submission import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    IDEMPOTENCY_KEY_PATTERN,
    check_idempotency_key,
    read_job_files,
)
from service.schemas import Problem

router = APIRouter(tags=["jobs"])

JOB_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
RESULT_MEDIA_TYPES: Final = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
}
_PROBLEM: Final = {"application/problem+json": {"schema": Problem.model_json_schema()}}


def _problems(*entries: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": text, "content": _PROBLEM} for status, text in entries}


_QUEUE_DOWN: Final = (
    503,
    "The job queue (Redis) is unreachable or not configured (queue_unavailable)",
)
_NOT_FOUND: Final = (404, "No such job, or it expired (job_not_found)")
_BAD_ID: Final = (422, "Malformed job id or query parameter (invalid_parameter)")

JOBS_UPLOAD_BODY: Final[dict[str, Any]] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                        "description": "One part per recording (any format /predict takes), or "
                        "a single zip, tar, tar.gz/.bz2/.xz archive of recordings; at most "
                        "SER_JOB_MAX_FILES files",
                    }
                },
                "additionalProperties": False,
            }
        }
    },
}

# Declared here rather than by FastAPI's ``Header()``, whose ``str | None`` schema cannot carry
# the constraints; ``check_idempotency_key`` validates with the same pattern and answers
# ``invalid_idempotency_key`` (400), not FastAPI's generic 422.
IDEMPOTENCY_KEY_HEADER: Final[dict[str, Any]] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retried submit with the same key and request returns the same job "
    f"(1-{IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters, no spaces; a UUID is a good key)",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}


def _jobs(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


JobsDep = Annotated[JobManager, Depends(_jobs)]
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="32 hexadecimal characters")]


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobStatus,
    summary="Submit many recordings as one batch job",
    openapi_extra={"requestBody": JOBS_UPLOAD_BODY, "parameters": [IDEMPOTENCY_KEY_HEADER]},
    responses={
        202: {
            "description": "Accepted; poll the `Location`",
            "headers": {
                "Location": {"schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when the Idempotency-Key named an existing job, "
                    "which is answered again",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
        },
        **_problems(
            (400, "Malformed form or Idempotency-Key (invalid_form, invalid_idempotency_key)"),
            (404, "Unknown model (unknown_model)"),
            (413, "Too many files or bytes (payload_too_large, too_many_files, job_too_large)"),
            (415, "Not multipart (wrong_content_type)"),
            (
                422,
                "Bad form, archive, parameter or callback (missing_field, unexpected_field, "
                "invalid_archive, invalid_parameter, callback_not_allowed, idempotency_key_reused)",
            ),
            _QUEUE_DOWN,
        ),
    },
)
async def submit_job(
    request: Request,
    model: SelectedModelDep,
    settings: SettingsDep,
    jobs: JobsDep,
    request_id: RequestIdDep,
    callback_url: Annotated[
        str | None,
        Query(
            max_length=MAX_URL_CHARS,
            description="Called (POST, HMAC-signed) when the job ends; "
            "its host must be on SER_JOB_CALLBACK_HOSTS",
        ),
    ] = None,
    analysis: Annotated[
        Analysis,
        Query(
            description="`predict` (default): each file's `POST /predict` body; `explain`: "
            "its `POST /explain` JSON body (pooled norms; about 0.5 s per file)"
        ),
    ] = "predict",
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", include_in_schema=False),
    ] = None,
) -> JSONResponse:
    """Every file gets exactly what `POST /predict` (or, with `?analysis=explain`,
    `POST /explain`) answers for it, same model and options; files that are not usable audio
    get that file's error instead."""
    jobs.require()
    key = check_idempotency_key(idempotency_key)
    callback = (
        None
        if callback_url is None
        else check_callback_url(callback_url, settings.job_callback_hosts)
    )
    files = await read_job_files(request, settings)
    options = JobOptions(analysis=analysis)
    submission = Submission(files, model, options, request_id, callback, key)
    created = await run_in_threadpool(jobs.submit, submission)
    status = await run_in_threadpool(jobs.status, created.job_id)
    headers = {"Location": presenters.job_path(created.job_id)}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(status.model_dump(mode="json"), status_code=202, headers=headers)


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatus,
    summary="Status, progress and per-file errors of a job",
    responses=_problems(_NOT_FOUND, _BAD_ID, _QUEUE_DOWN),
)
async def get_job(job_id: JobId, jobs: JobsDep) -> JobStatus:
    return await run_in_threadpool(jobs.status, job_id)


@router.get(
    "/jobs/{job_id}/results",
    summary="Per-file results as JSON, JSON Lines or CSV",
    response_class=JSONResponse,
    responses={
        200: {
            "model": JobResults,
            "description": "`json`: one document; `jsonl`: one line per file; `csv`: one row per "
            "file (segment `all`) and per segment. Unfinished files are `pending`.",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **_problems(_NOT_FOUND, _BAD_ID, _QUEUE_DOWN),
    },
)
async def get_results(
    job_id: JobId,
    jobs: JobsDep,
    format: Annotated[Literal["json", "jsonl", "csv"], Query(description="Result format")] = "json",
) -> Response:
    data = await run_in_threadpool(jobs.results, job_id)
    render = {
        "json": presenters.results_json,
        "jsonl": presenters.results_jsonl,
        "csv": presenters.results_csv,
    }[format]
    body = await run_in_threadpool(render, data.record, data.names, data.outcomes)
    headers = {}
    if format == "csv":
        headers["Content-Disposition"] = f'attachment; filename="job-{job_id}.csv"'
    return Response(body, media_type=RESULT_MEDIA_TYPES[format], headers=headers)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobStatus,
    summary="Cancel a queued or running job",
    responses=_problems(
        _NOT_FOUND,
        _BAD_ID,
        (409, "The job already succeeded or failed (job_already_finished)"),
        _QUEUE_DOWN,
    ),
)
async def cancel_job(job_id: JobId, jobs: JobsDep) -> JobStatus:
    """Files not started are dropped; files running finish but are not recorded. Canceling a
    canceled job answers its status again."""
    return await run_in_threadpool(jobs.cancel, job_id)
