"""Jobs in Redis: create (record + audio + one RQ job per file, in one transaction), read,
record file outcomes, cancel, and the queue figures behind ``/metrics``.

The API and the workers share this class; the atomic steps are the Lua scripts of
:mod:`service.jobs.scripts`. Redis errors propagate (the API wraps them in
``QueueUnavailable``; RQ retries a worker's file).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, cast

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from redis.typing import EncodableT
from rq import Queue, Retry
from rq.callbacks import Callback
from rq.queue import EnqueueData
from rq.worker import Worker

from service.errors import IdempotencyKeyReused
from service.jobs import keys
from service.jobs.keys import FINAL_STATES, JOB_STATES
from service.jobs.models import (
    FileError,
    FileOutcome,
    JobOptions,
    JobRecord,
    ModelChoice,
    NewFile,
)
from service.jobs.scripts import JobScripts, ScriptAnswer, bound_label
from service.metrics import HistogramSnapshot, JobQueueSnapshot

FILE_TASK: Final = "service.jobs.tasks.process_file"
FILE_FAILURE_CALLBACK: Final = "service.jobs.tasks.on_file_failure"
CALLBACK_TASK: Final = "service.jobs.tasks.deliver_callback"
FILE_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
ATTEMPTS_META: Final = "max_attempts"
"""RQ job meta field: the file's attempts in all (RQ itself keeps only the retries left)."""
RQ_RESULT_TTL_S: Final = 60
"""How long RQ keeps its own record of a finished file job. Not 0: with 0, RQ 3.0 deletes the job
at success and fails it ("Execution ... not found in Redis") when an earlier, abandoned attempt
left an expired execution behind; the real results live in the job's outcomes hash anyway."""
JOB_BUCKETS_S: Final = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


@dataclass(frozen=True)
class NewJob:
    """Everything a submission decided; ``file_timeouts_s`` is one time limit per file."""

    files: Sequence[NewFile]
    file_timeouts_s: Sequence[int]
    model: ModelChoice
    options: JobOptions
    request_id: str
    fingerprint: str
    result_ttl_s: int
    pending_ttl_s: int
    max_attempts: int
    callback_url: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Created:
    job_id: str
    replayed: bool
    """True when an ``Idempotency-Key`` matched an earlier submission of the same request."""


class JobStore:
    """Jobs, audio and outcomes in Redis; one RQ job per file on ``queue_name``."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.queue = Queue(queue_name, connection=redis)
        self.scripts = JobScripts(redis)

    def ping(self) -> None:
        self.redis.ping()

    # -- submission ---------------------------------------------------------------------------

    def create(self, new: NewJob) -> Created:
        """Store the job and enqueue its files atomically (MULTI/EXEC); honour the idempotency key.

        Raises:
            IdempotencyKeyReused: the key was used for a request with other files or options.
        """
        job_id = uuid.uuid4().hex
        claimed_ref = None
        if new.idempotency_key is not None:
            existing = self._claim_idempotency(new, job_id)
            if existing is not None:
                return Created(job_id=existing, replayed=True)
            claimed_ref = keys.idempotency(new.idempotency_key)
        try:
            self._write(job_id, new, claimed_ref)
        except BaseException:
            if claimed_ref is not None:
                self._release_claim(claimed_ref, job_id)
            raise
        return Created(job_id=job_id, replayed=False)

    def _claim_idempotency(self, new: NewJob, job_id: str) -> str | None:
        """``None`` when this request may create the job, else the id of the earlier job."""
        assert new.idempotency_key is not None
        ref = keys.idempotency(new.idempotency_key)
        if self.redis.set(ref, job_id, nx=True, ex=new.pending_ttl_s):
            return None
        earlier = cast(bytes | None, self.redis.get(ref))
        if earlier is not None:
            fingerprint = cast(
                bytes | None, self.redis.hget(keys.job(earlier.decode()), "fingerprint")
            )
            if fingerprint is not None:
                if fingerprint.decode() != new.fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used for a request with other files or options; "
                        "use a new key for a new job"
                    )
                return earlier.decode()
        self.redis.set(ref, job_id, ex=new.pending_ttl_s)  # the earlier job expired or never landed
        return None

    def _release_claim(self, ref: str, job_id: str) -> None:
        try:
            if self.redis.get(ref) == job_id.encode():
                self.redis.delete(ref)
        except Exception:  # the claim then points at no job, which the next submit overwrites
            return

    def _write(self, job_id: str, new: NewJob, idempotency_ref: str | None) -> None:
        created_at_s = self.server_time_s()
        with self.redis.pipeline(transaction=True) as pipe:
            self._write_record(pipe, job_id, new, created_at_s, idempotency_ref)
            self.queue.enqueue_many(self._file_jobs(job_id, new), pipeline=pipe)
            pipe.execute()

    def _write_record(
        self,
        pipe: Pipeline,
        job_id: str,
        new: NewJob,
        created_at_s: float,
        idempotency_ref: str | None,
    ) -> None:
        record_key, names_key, audio_key, _, _ = keys.job_keys(job_id)
        expires_at_s = created_at_s + new.pending_ttl_s
        pipe.hset(record_key, mapping=_record_fields(job_id, new, created_at_s, idempotency_ref))
        pipe.rpush(names_key, *[file.name for file in new.files])
        pipe.hset(audio_key, mapping={str(i): file.data for i, file in enumerate(new.files)})
        for key in (record_key, names_key, audio_key):
            pipe.expire(key, new.pending_ttl_s)
        pipe.zadd(keys.state_set("queued"), {job_id: expires_at_s})

    def _file_jobs(self, job_id: str, new: NewJob) -> list[EnqueueData]:
        retry = (
            Retry(max=new.max_attempts - 1, enqueue_at_front=True) if new.max_attempts > 1 else None
        )
        return [
            Queue.prepare_data(
                FILE_TASK,
                args=(job_id, index),
                timeout=timeout_s,
                result_ttl=RQ_RESULT_TTL_S,
                ttl=new.pending_ttl_s,
                failure_ttl=new.result_ttl_s,
                job_id=keys.rq_file_job(job_id, index),
                description=f"job {job_id} file {index}",
                retry=retry,
                meta={ATTEMPTS_META: new.max_attempts},
                on_failure=Callback(FILE_FAILURE_CALLBACK),
            )
            for index, timeout_s in enumerate(new.file_timeouts_s)
        ]

    # -- reading ------------------------------------------------------------------------------

    def record(self, job_id: str) -> JobRecord | None:
        """The job record, or ``None`` when there is no such job (never was, or expired)."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(keys.job(job_id)))
        return _parse_record(job_id, raw) if raw else None

    def names(self, job_id: str) -> list[str]:
        raw = cast(list[bytes], self.redis.lrange(keys.names(job_id), 0, -1))
        return [name.decode() for name in raw]

    def errors(self, job_id: str) -> dict[int, FileError]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(keys.errors(job_id)))
        return {int(index): FileError(**json.loads(text)) for index, text in raw.items()}

    def outcomes(self, job_id: str) -> dict[int, FileOutcome]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(keys.outcomes(job_id)))
        return {int(index): FileOutcome.from_json(text) for index, text in raw.items()}

    def audio(self, job_id: str, index: int) -> bytes | None:
        return cast(bytes | None, self.redis.hget(keys.audio(job_id), str(index)))

    def server_time_s(self) -> float:
        seconds, microseconds = self.redis.time()
        return seconds + microseconds / 1_000_000

    # -- changes ------------------------------------------------------------------------------

    def begin_file(self, job_id: str, index: int) -> ScriptAnswer:
        """Code 1: run the file; 0: skip it (already recorded, or the job ended); -1: no job."""
        return self.scripts.begin_file(job_id, index)

    def record_outcome(
        self, job_id: str, index: int, outcome: FileOutcome, file_seconds: float
    ) -> ScriptAnswer:
        """Record the file's outcome once (HSETNX); code 2 when it was the job's last file."""
        error_json = json.dumps(outcome.error.as_dict()) if outcome.error is not None else None
        return self.scripts.record_outcome(
            job_id,
            index,
            outcome.to_json(),
            error_json,
            file_seconds,
            (FILE_BUCKETS_S, JOB_BUCKETS_S),
        )

    def count_retry(self) -> None:
        self.redis.hincrby(keys.STATS, "files_retried", 1)

    def cancel(self, job_id: str) -> ScriptAnswer:
        """End the job as canceled and take its waiting files off the queue."""
        answer = self.scripts.cancel(job_id)
        if answer.code == 1:
            self._dequeue_files(job_id)
        return answer

    def _dequeue_files(self, job_id: str) -> None:
        """LREM every waiting file from the queue, then delete the RQ jobs that were waiting.

        Files already running finish on their worker; their outcome is then ignored.
        """
        total = int(cast(bytes, self.redis.hget(keys.job(job_id), "total") or b"0"))
        rq_ids = [keys.rq_file_job(job_id, index) for index in range(total)]
        with self.redis.pipeline(transaction=False) as pipe:
            for rq_id in rq_ids:
                self.queue.remove(rq_id, pipeline=pipe)
            removed = pipe.execute()
        waiting = [rq_id for rq_id, count in zip(rq_ids, removed, strict=True) if count]
        if waiting:
            self.redis.delete(*[self.queue.job_class.key_for(rq_id) for rq_id in waiting])

    # -- callbacks ----------------------------------------------------------------------------

    def queue_callback(self, job_id: str, timeout_s: int) -> bool:
        """Enqueue the job's callback if it is due and not queued yet (atomic, WATCH/MULTI).

        Returns:
            True when this call enqueued it.
        """
        record_key = keys.job(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(record_key)  # type: ignore[no-untyped-call]
                if pipe.hget(record_key, "callback_state") != b"pending":
                    return False
                pipe.multi()
                pipe.hset(record_key, "callback_state", "queued")
                self.queue.enqueue_many([self._callback_job(job_id, timeout_s)], pipeline=pipe)
                pipe.execute()
            except WatchError:
                return False
        return True

    def _callback_job(self, job_id: str, timeout_s: int) -> EnqueueData:
        return Queue.prepare_data(
            CALLBACK_TASK,
            args=(job_id,),
            timeout=timeout_s,
            result_ttl=RQ_RESULT_TTL_S,
            failure_ttl=24 * 3600,
            job_id=keys.rq_callback_job(job_id),
            description=f"callback of job {job_id}",
            retry=Retry(max=2),
        )

    def set_callback_result(
        self, job_id: str, state: str, attempts: int, status: int | None
    ) -> None:
        fields: dict[EncodableT, EncodableT] = {
            "callback_state": state,
            "callback_attempts": attempts,
        }
        if status is not None:
            fields["callback_status"] = status
        self.redis.hset(keys.job(job_id), mapping=fields)

    # -- metrics ------------------------------------------------------------------------------

    def stats(self) -> JobQueueSnapshot:
        """Queue depth, live workers, jobs by state, file counters and duration histograms."""
        now_s = self.server_time_s()
        with self.redis.pipeline(transaction=False) as pipe:
            for state in JOB_STATES:
                pipe.zremrangebyscore(keys.state_set(state), "-inf", now_s)
                pipe.zcard(keys.state_set(state))
            pipe.hgetall(keys.STATS)
            pipe.hgetall(keys.FILE_HISTOGRAM)
            pipe.hgetall(keys.JOB_HISTOGRAM)
            answers = pipe.execute()
        counts = answers[1 : 2 * len(JOB_STATES) : 2]
        counters = _decode_map(answers[-3])
        return JobQueueSnapshot(
            queue_depth=self.queue.count,
            workers=Worker.count(queue=self.queue),
            jobs_by_state=dict(zip(JOB_STATES, (int(c) for c in counts), strict=True)),
            files_succeeded=int(counters.get("files_succeeded", 0)),
            files_failed=int(counters.get("files_failed", 0)),
            files_retried=int(counters.get("files_retried", 0)),
            file_duration=_histogram(answers[-2], FILE_BUCKETS_S),
            job_duration=_histogram(answers[-1], JOB_BUCKETS_S),
        )


def is_final(status: str) -> bool:
    return status in FINAL_STATES


def _record_fields(
    job_id: str, new: NewJob, created_at_s: float, idempotency_ref: str | None
) -> dict[EncodableT, EncodableT]:
    fields: dict[EncodableT, EncodableT] = {
        "id": job_id,
        "status": "queued",
        "total": len(new.files),
        "done": 0,
        "failed": 0,
        "created_at": repr(created_at_s),
        "expires_at": repr(created_at_s + new.pending_ttl_s),
        "model_name": new.model.name,
        "model_version": new.model.version,
        "model_sha256": new.model.sha256,
        "labels": json.dumps(list(new.model.labels)),
        "options": new.options.to_json(),
        "request_id": new.request_id,
        "fingerprint": new.fingerprint,
        "result_ttl_s": new.result_ttl_s,
        "idempotency_ref": idempotency_ref or "",
    }
    if new.callback_url is not None:
        fields["callback_url"] = new.callback_url
        fields["callback_state"] = "waiting"
    return fields


def _parse_record(job_id: str, raw: dict[bytes, bytes]) -> JobRecord | None:
    fields = {key.decode(): value.decode() for key, value in raw.items()}
    if "status" not in fields or "total" not in fields:
        return None  # a partial record (e.g. only a late heartbeat field): treat as gone
    status = fields["status"]
    assert status in JOB_STATES, status
    return JobRecord(
        job_id=job_id,
        status=status,
        total=int(fields["total"]),
        done=int(fields.get("done", 0)),
        failed=int(fields.get("failed", 0)),
        created_at_s=float(fields["created_at"]),
        started_at_s=_optional_float(fields.get("started_at")),
        finished_at_s=_optional_float(fields.get("finished_at")),
        expires_at_s=float(fields["expires_at"]),
        model=ModelChoice(
            name=fields["model_name"],
            version=fields["model_version"],
            sha256=fields["model_sha256"],
            labels=tuple(json.loads(fields["labels"])),
        ),
        options=JobOptions.from_json(fields["options"]),
        request_id=fields.get("request_id", ""),
        callback_url=fields.get("callback_url"),
        callback_state=fields.get("callback_state"),
        callback_attempts=int(fields.get("callback_attempts", 0)),
        callback_status=_optional_int(fields.get("callback_status")),
    )


def _optional_float(text: str | None) -> float | None:
    return None if text is None else float(text)


def _optional_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _decode_map(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def _histogram(raw: dict[bytes, bytes], bounds_s: Sequence[float]) -> HistogramSnapshot:
    """Per-bucket counts stored by the scripts -> cumulative Prometheus buckets."""
    fields = _decode_map(raw)
    cumulative = 0
    buckets: list[tuple[str, int]] = []
    for label in [*(bound_label(bound) for bound in bounds_s), "+Inf"]:
        cumulative += int(fields.get(label, 0))
        buckets.append((label, cumulative))
    return HistogramSnapshot(buckets=buckets, sum_s=float(fields.get("sum", 0.0)))
