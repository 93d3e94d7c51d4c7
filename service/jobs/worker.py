"""``python -m service.jobs.worker``: load the models once, then run files from the queue.

An RQ ``Worker`` forks a work horse per file (the models are shared with it through fork), so a
crash or a time limit kills only that horse. Crash recovery is RQ's: a horse that dies is
retried by its worker; a whole worker that dies (SIGKILL, power loss) stops heartbeating, and
after ``SER_JOB_HEARTBEAT_S + SER_JOB_ABANDONED_AFTER_S`` another worker's maintenance (every
``SER_JOB_MAINTENANCE_INTERVAL_S``) finds the file abandoned and requeues it. When Redis goes
away the worker loop ends; this process waits for Redis and starts a fresh worker. A file a
worker had taken off the queue but not yet started when it died (or when Redis went away) sits in
RQ's intermediate queue and is retried after the same heartbeat + abandoned time.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Final

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job

from service.allocator import limit_malloc_arenas
from service.config import Settings, get_settings
from service.inference.registry import load_registry
from service.jobs import context as worker_context
from service.jobs.connection import connect, redact
from service.jobs.store import JobStore
from service.jobs.tasks import record_final_failure
from service.logs import configure_logging

MAINTENANCE_LOCK_S: Final = 60
"""RQ holds its registry-cleaning lock 15 minutes; a worker killed while cleaning would stall
recovery that long, so the lock is shorter here."""
RECONNECT_MAX_S: Final = 5.0
_log = logging.getLogger("service.jobs.worker")


class ServiceIntermediateQueue(IntermediateQueue):
    """RQ's list of files taken off the queue but not started yet, with a configurable time
    (RQ: one minute) after which a file left there by a dead worker is retried."""

    def __init__(self, queue_key: str, connection: Redis, stuck_after_s: float) -> None:
        super().__init__(queue_key, connection)
        self.stuck_after_s = stuck_after_s

    def should_be_cleaned_up(self, job_id: str) -> bool:
        first_seen = self.get_first_seen(job_id)
        if first_seen is None:
            return False
        return (datetime.now(tz=UTC) - first_seen).total_seconds() > self.stuck_after_s


class ServiceQueue(Queue):
    """RQ's queue with a registry-cleaning lock that expires after ``MAINTENANCE_LOCK_S`` and
    faster recovery of files a dead worker had taken but not started."""

    stuck_after_s: float = 60.0

    def acquire_maintenance_lock(self) -> bool:
        lock = self.connection.set(self.registry_cleaning_key, 1, nx=True, ex=MAINTENANCE_LOCK_S)
        return bool(lock)

    @property
    def intermediate_queue(self) -> IntermediateQueue:
        return ServiceIntermediateQueue(self.key, self.connection, self.stuck_after_s)


class ServiceWorker(Worker):
    """RQ's forking worker; a file whose worker misses its heartbeat by ``abandoned_after_s``
    counts as abandoned (RQ's own margin is fixed at 60 s)."""

    abandoned_after_s: int = 60
    stop_event: threading.Event = threading.Event()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval + self.abandoned_after_s)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_event.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def build_worker(settings: Settings, redis: Redis, stop_event: threading.Event) -> ServiceWorker:
    """A worker on ``settings.job_queue`` with the heartbeat and maintenance settings."""
    queue = ServiceQueue(settings.job_queue, connection=redis)
    queue.stuck_after_s = settings.job_heartbeat_s + settings.job_abandoned_after_s
    worker = ServiceWorker(
        [queue],
        connection=redis,
        queue_class=ServiceQueue,
        job_monitoring_interval=settings.job_heartbeat_s,
        maintenance_interval=settings.job_maintenance_interval_s,
        worker_ttl=settings.job_maintenance_interval_s + 15,  # dequeue blocks this minus 15 s
        work_horse_killed_handler=_on_horse_killed,
    )
    worker.abandoned_after_s = settings.job_abandoned_after_s
    worker.stop_event = stop_event
    return worker


def _on_horse_killed(job: Job, pid: int, status: int, rusage: Any) -> None:
    """The horse died (killed, out of memory, a crash in native code): fail the file on the
    last attempt; RQ retries it otherwise."""
    reason = f"its work horse (pid {pid}) died"
    if os.WIFSIGNALED(status):
        reason += f" from signal {os.WTERMSIG(status)}"
    record_final_failure(job, job.connection, reason)


def run(settings: Settings) -> None:
    """Load the models, then work until SIGTERM/SIGINT; survive Redis outages."""
    if settings.redis_url is None:
        raise SystemExit("SER_REDIS_URL is not set: the worker needs the job queue's Redis URL")
    registry = load_registry(
        settings.models_dir, settings.default_model, settings.onnx_intra_op_threads
    )
    redis = connect(settings.redis_url, None, retries=None)
    worker_context.install(
        worker_context.WorkerContext(settings, registry, JobStore(redis, settings.job_queue))
    )
    stop_event = threading.Event()
    _stop_on_signals(stop_event)
    _log.info(
        "worker ready",
        extra={
            "models": [model.key for model in registry],
            "queue": settings.job_queue,
            "redis": redact(settings.redis_url),
        },
    )
    while not stop_event.is_set():
        if not _wait_for_redis(redis, stop_event):
            break
        try:
            build_worker(settings, redis, stop_event).work(logging_level=settings.log_level)
        except (RedisConnectionError, RedisTimeoutError) as exc:  # lost starting or tearing down
            _log.warning("worker lost Redis: %s", exc)
        _stop_on_signals(stop_event)  # RQ installed its own handlers for the run
        if not stop_event.is_set():
            _log.warning("worker loop ended (Redis connection lost?); starting a new one")
    _log.info("worker stopped")


def _stop_on_signals(stop_event: threading.Event) -> None:
    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def _wait_for_redis(redis: Redis, stop_event: threading.Event) -> bool:
    """True once Redis answers; False when asked to stop first."""
    delay_s = 0.25
    while not stop_event.is_set():
        try:
            redis.ping()
            return True
        except (RedisConnectionError, RedisTimeoutError) as exc:
            _log.warning("waiting for Redis: %s", exc)
            stop_event.wait(delay_s)
            delay_s = min(delay_s * 2.0, RECONNECT_MAX_S)
    return False


def main() -> None:
    settings = get_settings()
    limit_malloc_arenas(settings.malloc_arena_max)
    configure_logging(settings.log_level, settings.log_json)
    run(settings)


if __name__ == "__main__":
    main()
