"""Every Redis key and RQ name the batch jobs use, in one place.

Per job ``<id>`` (32 hex characters):

- ``ser:job:<id>`` hash: the job record (status, counts, model, options, timestamps).
- ``ser:job:<id>:names`` list: file names in submission order.
- ``ser:job:<id>:audio`` hash: file index -> uploaded bytes; a field is deleted once that file
  has an outcome, the key when the job ends.
- ``ser:job:<id>:outcomes`` hash: file index -> JSON result or error, written with HSETNX so a
  file's outcome is recorded exactly once whatever retries happen.
- ``ser:job:<id>:errors`` hash: file index -> JSON error, the failed files only (small, for
  ``GET /jobs/{id}``).

Shared: ``ser:idempotency:<sha256 of key>`` -> job id; ``ser:jobs:<state>`` sorted sets
(job id scored by expiry time) for the jobs-by-state gauge; ``ser:stats`` (counters) and
``ser:stats:hist:<name>`` (histogram buckets) for ``/metrics``.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

JobState = Literal["queued", "running", "succeeded", "failed", "canceled"]
JOB_STATES: Final[tuple[JobState, ...]] = ("queued", "running", "succeeded", "failed", "canceled")
FINAL_STATES: Final[frozenset[str]] = frozenset({"succeeded", "failed", "canceled"})

PREFIX: Final = "ser"
STATS: Final = f"{PREFIX}:stats"
FILE_HISTOGRAM: Final = f"{PREFIX}:stats:hist:file_seconds"
JOB_HISTOGRAM: Final = f"{PREFIX}:stats:hist:job_seconds"


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def names(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:names"


def audio(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:audio"


def outcomes(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:outcomes"


def errors(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:errors"


def job_keys(job_id: str) -> list[str]:
    """Record, names, audio, outcomes, errors: every key that belongs to one job (this order)."""
    return [job(job_id), names(job_id), audio(job_id), outcomes(job_id), errors(job_id)]


def state_set(state: str) -> str:
    return f"{PREFIX}:jobs:{state}"


def state_sets() -> list[str]:
    return [state_set(state) for state in JOB_STATES]


def idempotency(key: str) -> str:
    """The key is hashed: client text never becomes part of a Redis key name."""
    return f"{PREFIX}:idempotency:{hashlib.sha256(key.encode()).hexdigest()}"


def rq_file_job(job_id: str, index: int) -> str:
    """The RQ job id of one file; deterministic, so a job's RQ jobs can be found and canceled."""
    return f"ser-{job_id}-{index}"


def rq_callback_job(job_id: str) -> str:
    return f"ser-{job_id}-callback"
