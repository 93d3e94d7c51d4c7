"""What RQ runs: one file of a job, the failure handler, and the job-end callback.

A file runs the same ``service.pipeline.analyse`` and ``service.api.presenters`` as
``POST /predict``; bad audio becomes that file's error (the RQ job still succeeds), any other
exception fails the RQ job so that RQ retries it (``SER_JOB_MAX_ATTEMPTS``). Outcomes are
written once (see ``service.jobs.scripts``), so a retry after a crash never duplicates a file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

from redis import Redis
from rq import get_current_job
from rq.job import Job

from service.api.explain_presenters import explain_response
from service.api.presenters import predict_response
from service.config import Settings
from service.errors import InputError, ModelUnavailable, ProcessingFailed, ServiceError
from service.explain.explanation import explain
from service.inference.session import OnnxModel
from service.jobs import context as worker_context
from service.jobs.callbacks import deliver, delivery_time_limit_s
from service.jobs.models import FileError, FileOutcome, JobRecord
from service.jobs.presenters import job_status
from service.jobs.store import ATTEMPTS_META, JobStore
from service.pipeline import analyse

_log = logging.getLogger(__name__)

Analyser = Callable[[bytes, OnnxModel, Settings, str], dict[str, Any]]


def _predict(data: bytes, model: OnnxModel, settings: Settings, request_id: str) -> dict[str, Any]:
    """Exactly the ``POST /predict`` body for ``data``."""
    analysis = analyse(data, model, settings)
    return predict_response(analysis, model, request_id).model_dump(mode="json")


def _explain(data: bytes, model: OnnxModel, settings: Settings, request_id: str) -> dict[str, Any]:
    """Exactly the ``POST /explain`` JSON body for ``data`` (pooled norms)."""
    analysis = analyse(data, model, settings)
    explanation = explain(analysis, model, None)
    return explain_response(analysis, explanation, model, request_id).model_dump(mode="json")


ANALYSES: Final[dict[str, Analyser]] = {"predict": _predict, "explain": _explain}
"""Per-file analyses by ``JobOptions.analysis``."""


def process_file(job_id: str, index: int) -> str:
    """Analyse file ``index`` of job ``job_id`` and record its outcome (once)."""
    context = worker_context.current()
    store = context.store
    _count_retry(store, job_id, index)
    answer = store.begin_file(job_id, index)
    if answer.code != 1:
        ensure_callback(store, job_id, context.settings)  # a crash may have cut the last run short
        return f"skipped: job {answer.status or 'expired'}"
    record = store.record(job_id)
    if record is None:
        return "skipped: job expired"
    start_s = time.perf_counter()
    outcome = _analyse_file(context, record, index)
    answer = store.record_outcome(job_id, index, outcome, time.perf_counter() - start_s)
    if answer.code == 2:
        ensure_callback(store, job_id, context.settings)
    return answer.status


def _count_retry(store: JobStore, job_id: str, index: int) -> None:
    """Count (``ser_job_file_retries_total``) and log a file that runs again after a crash,
    a time limit or a server fault (attempts come from the RQ job's meta and retries left)."""
    job = get_current_job()
    if job is None or job.retries_left is None:
        return
    attempt = int(job.meta.get(ATTEMPTS_META, 1)) - job.retries_left
    if attempt > 1:
        store.count_retry()
        _log.warning("job %s file %d: attempt %d", job_id, index, attempt)


def _analyse_file(
    context: worker_context.WorkerContext, record: JobRecord, index: int
) -> FileOutcome:
    data = context.store.audio(record.job_id, index)
    if data is None:
        return _failed(ProcessingFailed("the file's audio is gone (the job ended meanwhile)"))
    try:
        model = context.model_for(record.model)
        analyser = ANALYSES[record.options.analysis]
        result = analyser(data, model, context.settings, f"{record.job_id}/{index}")
    except (InputError, ModelUnavailable) as exc:
        return _failed(exc)
    return FileOutcome(result=result)


def _failed(error: ServiceError) -> FileOutcome:
    return FileOutcome(error=FileError.of(error))


def on_file_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback (an exception, the time limit, an abandoned run): on the last attempt,
    record ``processing_failed`` for the file so that the job still ends."""
    reason = "its worker stopped answering" if exc_value is None else _describe(exc_value)
    record_final_failure(job, connection, reason)


def record_final_failure(job: Job, connection: Redis, reason: str) -> None:
    """Record ``processing_failed`` unless RQ will retry the file."""
    if job.retries_left:
        _log.warning("file job %s failed (%s); RQ retries it", job.id, reason)
        return
    job_id, index = job.args
    store = JobStore(connection, job.origin)
    error = ProcessingFailed(f"the file failed on every attempt; last: {reason}")
    answer = store.record_outcome(job_id, index, _failed(error), 0.0)
    if answer.code == 2:
        ensure_callback(store, job_id, _settings_or_none())


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "JobTimeoutException":
        return "it ran past its time limit (SER_JOB_TIMEOUT_BASE_S + SER_JOB_TIMEOUT_PER_AUDIO_S)"
    return f"{name}: {str(exc)[:200]}"


def _settings_or_none() -> Settings | None:
    try:
        return worker_context.current().settings
    except RuntimeError:
        return None


def ensure_callback(store: JobStore, job_id: str, settings: Settings | None) -> None:
    """Queue the job's callback when the job has ended and it is not queued yet."""
    if settings is None:
        return
    limit_s = delivery_time_limit_s(settings.job_callback_timeout_s, settings.job_callback_attempts)
    if store.queue_callback(job_id, limit_s):
        _log.info("callback queued", extra={"job_id": job_id})


def deliver_callback(job_id: str) -> str:
    """POST the ended job's signed status document to its callback URL."""
    context = worker_context.current()
    settings, store = context.settings, context.store
    record = store.record(job_id)
    if record is None or record.callback_url is None:
        return "skipped: no job or no callback"
    if settings.job_callback_secret is None:
        _log.error("job %s: no SER_JOB_CALLBACK_SECRET on this worker; callback not sent", job_id)
        store.set_callback_result(job_id, "failed", 0, None)
        return "failed: no secret"
    status = job_status(record, store.errors(job_id), store.names(job_id))
    body = status.model_dump_json().encode()
    delivery = deliver(
        record.callback_url,
        job_id,
        body,
        settings.job_callback_secret.get_secret_value(),
        settings.job_callback_timeout_s,
        settings.job_callback_attempts,
    )
    store.set_callback_result(job_id, delivery.state, delivery.attempts, delivery.status)
    return delivery.state
