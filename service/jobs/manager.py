"""The API's side of batch jobs: submit, status, results, cancel, readiness and metrics.

Everything here is synchronous (Redis calls); the routes run it in a worker thread. Redis being
unreachable becomes ``QueueUnavailable`` (503); ``/predict`` never touches this class.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from service.config import Settings
from service.errors import JobAlreadyFinished, JobNotFound, QueueUnavailable
from service.inference.session import OnnxModel
from service.jobs import presenters
from service.jobs.callbacks import delivery_time_limit_s
from service.jobs.connection import connect, not_configured, queue_errors, redact
from service.jobs.durations import file_timeout_s, header_duration_s
from service.jobs.models import FileOutcome, JobOptions, JobRecord, ModelChoice, NewFile
from service.jobs.schemas import JobStatus
from service.jobs.store import Created, JobStore, NewJob
from service.jobs.submission import fingerprint
from service.metrics import JobQueueSnapshot

PROBE_TIMEOUT_S: Final = 1.0
"""Timeout of the /readyz and /metrics probes, shorter than the request timeout."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """A validated ``POST /jobs`` request."""

    files: Sequence[tuple[str, bytes]]
    model: OnnxModel
    options: JobOptions
    request_id: str
    callback_url: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class JobResultsData:
    record: JobRecord
    names: list[str]
    outcomes: dict[int, FileOutcome]


class JobManager:
    """Batch jobs for one API process; ``store`` is ``None`` when no queue is configured."""

    def __init__(self, settings: Settings, store: JobStore | None, probe: JobStore | None) -> None:
        self.settings = settings
        self._store = store
        self._probe = probe

    @classmethod
    def from_settings(cls, settings: Settings) -> JobManager:
        """Clients connect lazily: an unreachable Redis does not stop the API from starting."""
        url = settings.redis_url
        if url is None:
            return cls(settings, None, None)
        store = JobStore(connect(url, settings.redis_timeout_s), settings.job_queue)
        probe = JobStore(connect(url, PROBE_TIMEOUT_S, retries=0), settings.job_queue)
        return cls(settings, store, probe)

    @property
    def configured(self) -> bool:
        return self._store is not None

    def require(self) -> JobStore:
        """The store. Raises: QueueUnavailable when no queue is configured."""
        if self._store is None:
            raise not_configured()
        return self._store

    def submit(self, submission: Submission) -> Created:
        """Store and enqueue the job (or find the earlier one with the same Idempotency-Key)."""
        store = self.require()
        new = self._new_job(submission)
        with queue_errors(self.settings.redis_url):
            created = store.create(new)
        _log.info(
            "job submitted",
            extra={"job_id": created.job_id, "files": len(new.files), "replayed": created.replayed},
        )
        return created

    def _new_job(self, submission: Submission) -> NewJob:
        files = [NewFile(name, data, header_duration_s(data)) for name, data in submission.files]
        manifest = submission.model.manifest
        model = ModelChoice(
            manifest.name,
            manifest.version,
            manifest.sha256,
            tuple(manifest.heads.categorical.labels),
        )
        request_options = json.dumps(
            [model.key, model.sha256, submission.options.to_json(), submission.callback_url]
        )
        return NewJob(
            files=files,
            file_timeouts_s=[file_timeout_s(file.duration_s, self.settings) for file in files],
            model=model,
            options=submission.options,
            request_id=submission.request_id,
            fingerprint=fingerprint(submission.files, request_options),
            result_ttl_s=self.settings.job_result_ttl_s,
            pending_ttl_s=self.settings.job_pending_ttl_s,
            max_attempts=self.settings.job_max_attempts,
            callback_url=submission.callback_url,
            idempotency_key=submission.idempotency_key,
        )

    def status(self, job_id: str) -> JobStatus:
        """Raises: JobNotFound (never existed or expired), QueueUnavailable."""
        store = self.require()
        with queue_errors(self.settings.redis_url):
            record = self._record(store, job_id)
            return presenters.job_status(record, store.errors(job_id), store.names(job_id))

    def results(self, job_id: str) -> JobResultsData:
        store = self.require()
        with queue_errors(self.settings.redis_url):
            record = self._record(store, job_id)
            return JobResultsData(record, store.names(job_id), store.outcomes(job_id))

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or running job.

        Raises:
            JobNotFound: no such job. JobAlreadyFinished: it succeeded or failed already.
        """
        store = self.require()
        with queue_errors(self.settings.redis_url):
            answer = store.cancel(job_id)
            if answer.code == -1:
                raise _not_found(job_id)
            if answer.code == 0 and answer.status != "canceled":
                raise JobAlreadyFinished(
                    f"job {job_id} already {answer.status}; its results stay until it expires"
                )
            if answer.code == 1:
                limit_s = delivery_time_limit_s(
                    self.settings.job_callback_timeout_s, self.settings.job_callback_attempts
                )
                store.queue_callback(job_id, limit_s)
        return self.status(job_id)

    def readiness(self) -> str:
        """What ``/readyz`` says about the queue (it never makes the API unready: /predict
        does not need Redis)."""
        if self._probe is None:
            return "not configured (SER_REDIS_URL unset): batch jobs answer 503"
        url = redact(self.settings.redis_url or "")
        try:
            with queue_errors(self.settings.redis_url):
                snapshot = self._probe.stats()
        except QueueUnavailable as exc:
            return f"unreachable: {exc.detail}"
        return (
            f"reachable at {url}, {snapshot.workers} workers, {snapshot.queue_depth} files queued"
        )

    def snapshot(self) -> JobQueueSnapshot | None:
        """The ``/metrics`` figures, ``None`` when the queue is not configured or unreachable."""
        if self._probe is None:
            return None
        with queue_errors(self.settings.redis_url):
            return self._probe.stats()

    @staticmethod
    def _record(store: JobStore, job_id: str) -> JobRecord:
        record = store.record(job_id)
        if record is None:
            raise _not_found(job_id)
        return record


def _not_found(job_id: str) -> JobNotFound:
    return JobNotFound(
        f"no job {job_id}: it never existed or expired (results are kept SER_JOB_RESULT_TTL_S "
        "after a job ends)"
    )
