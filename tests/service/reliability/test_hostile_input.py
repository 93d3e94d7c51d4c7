"""Replay the hostile-input corpus against ``/predict``, ``/explain`` and ``/jobs`` over real HTTP.

Every case must get the outcome :data:`~tests.service.reliability.corpus.EXPECTED` declares
(a problem document with that status and code, or a valid result), within
:data:`HANG_GUARD_S`, and the service must still answer ``/healthz`` afterwards. Each replay
checks all cases, prints a one-line summary and then fails listing every miss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import httpx
import pytest
from pydantic import BaseModel

from service.jobs.schemas import JobResults
from service.schemas import ExplainResponse, PredictResponse
from tests.service.jobs.conftest import WorkerProcess
from tests.service.jobs.helpers import wait_for
from tests.service.reliability.corpus import (
    ACCEPTED,
    EXPECTED,
    HostileRequest,
    Outcome,
)

HANG_GUARD_S: Final = 30.0
"""A hang guard, not a speed claim: no single answer may take longer."""
JOB_HANG_GUARD_S: Final = 300.0
"""The whole corpus as one job, on two workers sharing two cores with the test process."""
PROBLEM: Final = "application/problem+json"


@dataclass
class Replay:
    """Cases tried against one endpoint, the misses, and the slowest answer."""

    endpoint: str
    tried: int = 0
    failures: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    def record(self, case: str, elapsed_s: float, miss: str | None) -> None:
        self.tried += 1
        self.slowest = max(self.slowest, (elapsed_s, case))
        if miss is not None:
            self.failures.append(f"{case}: {miss}")

    def report(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Print the summary line, then fail with every miss."""
        with capsys.disabled():
            print(
                f"\nhostile input {self.endpoint}: {self.tried} cases tried, "
                f"{len(self.failures)} failures, slowest answer {self.slowest[0]:.2f} s "
                f"({self.slowest[1]})"
            )
        assert not self.failures, "\n".join(self.failures)


def all_finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a decoded JSON document."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(all_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(all_finite(item) for item in value)
    return True


def result_miss(body: Any, schema: type[BaseModel]) -> str | None:
    """Why ``body`` is not a valid analysis result, or ``None``."""
    try:
        schema.model_validate(body)
    except ValueError as exc:
        return f"the 200 body does not match {schema.__name__}: {exc}"
    if not all_finite(body):
        return "the 200 body holds NaN or infinite numbers"
    probabilities = body["probabilities"]
    if abs(sum(probabilities.values()) - 1.0) > 1e-3 or body["label"] not in probabilities:
        return f"probabilities {probabilities} do not sum to 1 or miss label {body['label']}"
    return None


def response_miss(
    response: httpx.Response, expected: Outcome, schema: type[BaseModel]
) -> str | None:
    """Why ``response`` is not ``expected``, or ``None``."""
    if response.status_code != expected.status:
        got = f"{response.status_code}: {response.text[:300]}"
        return f"expected {expected.status} {expected.code}, got {got}"
    if expected.code is None:
        return result_miss(response.json(), schema) if expected.status == 200 else None
    if response.headers.get("content-type") != PROBLEM:
        return f"content-type {response.headers.get('content-type')}, not {PROBLEM}"
    body = response.json()
    if (body.get("code"), body.get("status")) != (expected.code, expected.status):
        return f"expected code {expected.code}, got {body.get('code')} ({body.get('detail')})"
    return None if body.get("request_id") else "the problem has no request_id"


def timed_send(
    request: HostileRequest, client: httpx.Client, path: str
) -> tuple[httpx.Response | None, float, str | None]:
    """The response (``None`` when there was none), seconds taken, and why there was none."""
    start_s = time.monotonic()
    try:
        response = request.send(client, path)
    except httpx.HTTPError as exc:
        return None, time.monotonic() - start_s, f"no answer: {type(exc).__name__}: {exc}"
    return response, time.monotonic() - start_s, None


def health_miss(client: httpx.Client) -> str | None:
    try:
        status = client.get("/healthz").status_code
    except httpx.HTTPError as exc:
        return f"/healthz did not answer afterwards: {exc}"
    return None if status == 200 else f"/healthz answered {status} afterwards"


def replay_one(
    client: httpx.Client,
    path: str,
    case: str,
    request: HostileRequest,
    check: Callable[[httpx.Response], str | None],
) -> tuple[float, str | None]:
    """Send one case; seconds taken and the first miss (answer, time bound, health)."""
    response, elapsed_s, miss = timed_send(request, client, path)
    if response is not None:
        miss = check(response)
    if miss is None and elapsed_s > HANG_GUARD_S:
        miss = f"answered after {elapsed_s:.1f} s, more than the {HANG_GUARD_S:g} s hang guard"
    return elapsed_s, miss or health_miss(client)


@pytest.fixture()
def hang_guarded(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=HANG_GUARD_S) as client:
        yield client


def test_every_case_has_one_expectation(corpus: dict[str, HostileRequest]) -> None:
    assert sorted(corpus) == sorted(EXPECTED)
    assert len(corpus) >= 100


@pytest.mark.parametrize(
    ("path", "schema"), [("/predict", PredictResponse), ("/explain", ExplainResponse)]
)
def test_single_upload_endpoints_replay(
    hang_guarded: httpx.Client,
    corpus: dict[str, HostileRequest],
    capsys: pytest.CaptureFixture[str],
    path: str,
    schema: type[BaseModel],
) -> None:
    replay = Replay(path)
    for case, request in corpus.items():
        check = partial(response_miss, expected=EXPECTED[case], schema=schema)
        elapsed_s, miss = replay_one(hang_guarded, path, case, request, check)
        replay.record(case, elapsed_s, miss)
    replay.report(capsys)


# --- /jobs ----------------------------------------------------------------------------------


def file_cases(corpus: dict[str, HostileRequest]) -> list[str]:
    """Cases whose request is one file: together they make one job."""
    return [case for case, request in corpus.items() if request.single_file is not None]


def job_parts(corpus: dict[str, HostileRequest], cases: list[str]) -> HostileRequest:
    parts = tuple(part for case in cases if (part := corpus[case].single_file) is not None)
    return HostileRequest(parts)


def file_miss(entry: dict[str, Any], expected: Outcome) -> str | None:
    """Why one file of a job did not get ``expected``, or ``None``."""
    if expected.status == 200:
        if entry["status"] != "succeeded":
            return f"expected a result, got {entry['status']}: {entry['error']}"
        return result_miss(entry["result"], PredictResponse)
    error = entry["error"] or {}
    got = (entry["status"], error.get("status"), error.get("code"))
    if got != ("failed", expected.status, expected.code):
        return f"expected failed {expected.status} {expected.code}, got {got}"
    return None


def submission_miss(
    client: httpx.Client, response: httpx.Response, expected: Outcome
) -> str | None:
    """A submission case: the problem, or for an accepted job, that it ends with results."""
    if expected != ACCEPTED:
        return response_miss(response, expected, PredictResponse)
    if response.status_code != 202:
        return f"expected 202, got {response.status_code}: {response.text[:300]}"
    status = wait_for(client, response.json()["id"], timeout_s=JOB_HANG_GUARD_S)
    return None if status["status"] == "succeeded" else f"the job ended {status['status']}"


def test_jobs_replay(
    jobs_client: httpx.Client,
    shared_workers: list[WorkerProcess],
    corpus: dict[str, HostileRequest],
    capsys: pytest.CaptureFixture[str],
) -> None:
    replay = Replay("/jobs")
    cases = file_cases(corpus)
    _replay_job_of_files(jobs_client, corpus, cases, replay)
    for case in sorted(set(corpus) - set(cases)):
        check = partial(
            submission_miss, jobs_client, expected=EXPECTED[case].jobs or EXPECTED[case]
        )
        elapsed_s, miss = replay_one(jobs_client, "/jobs", case, corpus[case], check)
        replay.record(case, elapsed_s, miss)
    alive = sum(worker.process.poll() is None for worker in shared_workers)
    if alive != len(shared_workers):
        replay.failures.append(f"only {alive} of {len(shared_workers)} workers still run")
    replay.report(capsys)


def _replay_job_of_files(
    client: httpx.Client, corpus: dict[str, HostileRequest], cases: list[str], replay: Replay
) -> None:
    """All one-file cases as the files of one job; each file's outcome is checked."""
    response, elapsed_s, miss = timed_send(job_parts(corpus, cases), client, "/jobs")
    if response is None or response.status_code != 202:
        text = miss or (response.text[:300] if response is not None else "")
        replay.failures.append(f"the job of {len(cases)} files was not accepted: {text}")
        return
    job_id = response.json()["id"]
    wait_for(client, job_id, timeout_s=JOB_HANG_GUARD_S)
    results = client.get(f"/jobs/{job_id}/results").json()
    JobResults.model_validate(results)
    outcomes = {entry["index"]: entry for entry in results["files"]}
    for index, case in enumerate(cases):
        replay.record(case, 0.0, file_miss(outcomes[index], EXPECTED[case]))
    replay.slowest = max(replay.slowest, (elapsed_s, f"submitting the job of {len(cases)} files"))
