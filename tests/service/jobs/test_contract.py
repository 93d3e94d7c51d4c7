"""The job routes against ``openapi.yaml``: live APIs wired to a real Valkey and real workers.

``tests/service/api/test_contract.py`` covers the other routes. Here schemathesis generates
requests for the four job routes, where jobs really are created, read, rendered and canceled
(the stateful phase follows ``POST /jobs`` to the job it created: links inferred from
``Location``); the checks that cannot hold are switched off for one operation each in
``schemathesis.toml`` beside this file, with the reason. Random bytes never make a file
succeed, so a second test submits real speech and runs every schemathesis check on each
answer of that job's life.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import schemathesis

from service.jobs.submission import IDEMPOTENCY_KEY_PATTERN
from tests.service.api.contract import (
    ROOT,
    assert_schemathesis_passes,
    schemathesis_command,
)
from tests.service.jobs.conftest import (
    ValkeyServer,
    WorkerFactory,
    job_settings,
    new_queue,
    serve,
)
from tests.service.jobs.helpers import as_parts, assert_problem, ravdess_clips, submit, wait_for

CONFIG: Final = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES: Final = 50
RESULT_FORMATS: Final = ("json", "jsonl", "csv")
NOT_AUDIO: Final = ("file", ("notes.txt", b"these are notes, not a recording"))


@pytest.fixture(scope="module")
def document() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_path(ROOT / "openapi.yaml")


def test_job_routes_honour_the_openapi_document(
    valkey: ValkeyServer, jobs_models_dir: Path, start_workers: WorkerFactory, tmp_path: Path
) -> None:
    """On a queue of its own: the run leaves a few hundred small files behind, which must not
    hold up the tests that share the session's queue."""
    queue = new_queue()
    start_workers(valkey.url, queue, 1)
    options = ["--include-path-regex", "^/jobs", "--phases", "examples,coverage,fuzzing,stateful"]
    with serve(job_settings(jobs_models_dir, valkey.url, queue)) as url:
        command = schemathesis_command(url, MAX_EXAMPLES, options, config=CONFIG)
        assert_schemathesis_passes(command, tmp_path)


@pytest.mark.parametrize("analysis", ["predict", "explain"])
def test_a_real_job_answers_as_documented(
    jobs_client: httpx.Client, document: schemathesis.BaseSchema, analysis: str
) -> None:
    """A clip that succeeds and a file that fails, submitted, replayed, read in every format and
    canceled too late: each answer passes every schemathesis check."""
    parts = [*as_parts(ravdess_clips(1)), NOT_AUDIO]
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    query = {"analysis": analysis}
    submitted = submit(jobs_client, parts, params=query, headers=headers)
    conforms(document, submitted, "POST", "/jobs", query=query, headers=headers)
    job_id = submitted.json()["id"]
    status = wait_for(jobs_client, job_id)
    assert status["status"] == "succeeded"
    assert status["progress"] == {"done": 2, "total": 2, "succeeded": 1, "failed": 1}
    replayed = submit(jobs_client, parts, params=query, headers=headers)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    conforms(document, replayed, "POST", "/jobs", query=query, headers=headers)
    check_reads(jobs_client, document, job_id)


def test_the_idempotency_key_is_declared_as_it_is_checked(
    jobs_client: httpx.Client, document: schemathesis.BaseSchema
) -> None:
    """The header's declared pattern is the one the service validates with; a key outside it is
    ``400 invalid_idempotency_key``, as declared."""
    parameters = document["/jobs"]["POST"].definition.raw["parameters"]
    header = next(p for p in parameters if p["name"] == "Idempotency-Key")
    assert (header["in"], header["schema"]["pattern"]) == ("header", IDEMPOTENCY_KEY_PATTERN)
    too_long = {"Idempotency-Key": "k" * 256}
    refused = jobs_client.post("/jobs", files=[NOT_AUDIO], headers=too_long)
    assert_problem(refused, 400, "invalid_idempotency_key")
    conforms(document, refused, "POST", "/jobs", headers=too_long)


def check_reads(client: httpx.Client, document: schemathesis.BaseSchema, job_id: str) -> None:
    """The status, the results in each format, and a cancel of the finished job (409)."""
    path = {"job_id": job_id}
    conforms(document, client.get(f"/jobs/{job_id}"), "GET", "/jobs/{job_id}", path_parameters=path)
    for result_format in RESULT_FORMATS:
        query = {"format": result_format}
        response = client.get(f"/jobs/{job_id}/results", params=query)
        assert response.status_code == 200, response.text
        conforms(
            document, response, "GET", "/jobs/{job_id}/results", path_parameters=path, query=query
        )
    canceled = client.delete(f"/jobs/{job_id}")
    assert canceled.status_code == 409, canceled.text
    conforms(document, canceled, "DELETE", "/jobs/{job_id}", path_parameters=path)


def conforms(
    document: schemathesis.BaseSchema,
    response: httpx.Response,
    method: str,
    path: str,
    **case: Any,
) -> None:
    """Run schemathesis's response checks (status, content type, headers, body) on
    ``response``, the answer to ``method path`` with the request values in ``case``.

    Raises:
        schemathesis.FailureGroup: what does not match the document.
    """
    response.request.read()  # schemathesis reports the request body; a multipart one streams
    document[path][method].Case(**case).validate_response(response)
