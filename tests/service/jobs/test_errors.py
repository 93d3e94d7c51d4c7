"""Every bad request to the job endpoints: a 4xx problem with a stable code (503 for the queue)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.service.jobs.conftest import job_settings, serve
from tests.service.jobs.helpers import as_parts, assert_problem, ravdess_clips, submit, wait_for

UNKNOWN_ID = "0" * 32


def test_not_multipart(jobs_client: httpx.Client) -> None:
    response = jobs_client.post(
        "/jobs", content=b"{}", headers={"content-type": "application/json"}
    )
    assert_problem(response, 415, "wrong_content_type")


def test_malformed_multipart(jobs_client: httpx.Client) -> None:
    response = jobs_client.post(
        "/jobs",
        content=b"--x\r\nnot a header\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert_problem(response, 400, "invalid_form")


def test_no_file_part(jobs_client: httpx.Client) -> None:
    response = jobs_client.post("/jobs", files={"other": ("a.wav", b"x")}, data={})
    assert_problem(response, 422, "unexpected_field")
    response = jobs_client.post(
        "/jobs", content=b"--x--\r\n", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert_problem(response, 422, "missing_field")


def test_text_instead_of_file(jobs_client: httpx.Client) -> None:
    body = b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\ntext\r\n--x--\r\n'
    response = jobs_client.post(
        "/jobs", content=body, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert_problem(response, 422, "missing_field")


def test_too_many_files(jobs_models_dir: Path, valkey: object) -> None:
    settings = job_settings(jobs_models_dir, valkey.url, "unused", job_max_files=3)  # type: ignore[attr-defined]
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        parts = [("file", (f"{n}.wav", b"RIFF")) for n in range(4)]
        assert_problem(client.post("/jobs", files=parts), 413, "too_many_files")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as packed:
            for n in range(4):
                packed.writestr(f"{n}.wav", b"RIFF")
        response = client.post("/jobs", files=[("file", ("a.zip", archive.getvalue()))])
        assert_problem(response, 413, "too_many_files")


def test_job_too_large(jobs_models_dir: Path, valkey: object) -> None:
    settings = job_settings(
        jobs_models_dir,
        valkey.url,
        "unused",
        job_max_audio_bytes=1000,  # type: ignore[attr-defined]
    )
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        parts = [("file", ("a.wav", b"x" * 600)), ("file", ("b.wav", b"x" * 600))]
        assert_problem(client.post("/jobs", files=parts), 413, "job_too_large")
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as packed:
            packed.writestr("a.wav", b"\0" * 900)
            packed.writestr("b.wav", b"\0" * 900)
        response = client.post("/jobs", files=[("file", ("a.zip", bomb.getvalue()))])
        assert_problem(response, 413, "job_too_large")


def test_archive_member_larger_than_an_upload(jobs_models_dir: Path, valkey: object) -> None:
    settings = job_settings(
        jobs_models_dir,
        valkey.url,
        "unused",
        max_upload_bytes=50_000,  # type: ignore[attr-defined]
    )
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as packed:
            packed.writestr("huge.wav", b"\0" * 10_000_000)  # 10 MB of zeros, ~10 kB packed
        response = client.post("/jobs", files=[("file", ("a.zip", bomb.getvalue()))])
        assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "archive",
    [
        b"PK\x03\x04" + b"\0" * 200,  # zip signature, no zip
        b"\x1f\x8b\x08\0" + b"garbage" * 20,  # gzip signature, broken stream
    ],
    ids=["broken-zip", "broken-gzip"],
)
def test_broken_archive(jobs_client: httpx.Client, archive: bytes) -> None:
    response = jobs_client.post("/jobs", files=[("file", ("a.zip", archive))])
    assert_problem(response, 422, "invalid_archive")


def test_archive_without_files(jobs_client: httpx.Client) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(_directory("empty-dir"))
    response = jobs_client.post("/jobs", files=[("file", ("a.tar", buffer.getvalue()))])
    assert_problem(response, 422, "invalid_archive")


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_encrypted_zip_member(jobs_client: httpx.Client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.wav", b"RIFF....")
    data = bytearray(buffer.getvalue())
    data[6] |= 0x1  # local header: "encrypted"
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1  # central directory: "encrypted"
    response = jobs_client.post("/jobs", files=[("file", ("a.zip", bytes(data)))])
    assert_problem(response, 422, "invalid_archive")


def test_unknown_model(jobs_client: httpx.Client) -> None:
    clip = ravdess_clips(1)[0]
    response = jobs_client.post("/jobs", files=as_parts([clip]), params={"model": "nope"})
    assert_problem(response, 404, "unknown_model")
    response = jobs_client.post("/jobs", files=as_parts([clip]), params={"model": "../etc"})
    assert_problem(response, 422, "invalid_parameter")


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("ftp://127.0.0.1/x", 422, "invalid_parameter"),
        ("not a url", 422, "invalid_parameter"),
        ("http://user:pw@127.0.0.1/x", 422, "invalid_parameter"),
        ("http://127.0.0.1:99999/x", 422, "invalid_parameter"),
        ("http://169.254.169.254/latest/meta-data", 422, "callback_not_allowed"),
        ("https://example.org/hook", 422, "callback_not_allowed"),
    ],
)
def test_bad_callback_url(jobs_client: httpx.Client, url: str, status: int, code: str) -> None:
    clip = ravdess_clips(1)[0]
    response = jobs_client.post("/jobs", files=as_parts([clip]), params={"callback_url": url})
    assert_problem(response, status, code)


def test_callbacks_off_without_allow_list(jobs_models_dir: Path, valkey: object) -> None:
    settings = job_settings(
        jobs_models_dir,
        valkey.url,  # type: ignore[attr-defined]
        "unused",
        job_callback_hosts=frozenset(),
        job_callback_secret=None,
    )
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(
            "/jobs", files=[("file", ("a.wav", b"x"))], params={"callback_url": "http://127.0.0.1/"}
        )
        body = assert_problem(response, 422, "callback_not_allowed")
        assert "SER_JOB_CALLBACK_HOSTS" in body["detail"]


@pytest.mark.parametrize("key", ["", "with space", "ü-key", "k" * 256])
def test_malformed_idempotency_key(jobs_client: httpx.Client, key: str) -> None:
    clip = ravdess_clips(1)[0]
    response = jobs_client.post(
        "/jobs", files=as_parts([clip]), headers={"Idempotency-Key": key.encode()}
    )
    assert_problem(response, 400, "invalid_idempotency_key")


def test_unknown_and_malformed_job_ids(jobs_client: httpx.Client) -> None:
    for method, path in (
        ("GET", f"/jobs/{UNKNOWN_ID}"),
        ("GET", f"/jobs/{UNKNOWN_ID}/results"),
        ("DELETE", f"/jobs/{UNKNOWN_ID}"),
    ):
        assert_problem(jobs_client.request(method, path), 404, "job_not_found")
    assert_problem(jobs_client.get("/jobs/not-an-id"), 422, "invalid_parameter")
    assert_problem(jobs_client.delete("/jobs/ABC"), 422, "invalid_parameter")


def test_unknown_results_format(jobs_client: httpx.Client) -> None:
    job_id = submit(jobs_client, as_parts(ravdess_clips(1))).json()["id"]
    response = jobs_client.get(f"/jobs/{job_id}/results", params={"format": "xml"})
    assert_problem(response, 422, "invalid_parameter")


def test_cancel_a_finished_job(jobs_client: httpx.Client) -> None:
    job_id = submit(jobs_client, as_parts(ravdess_clips(1))).json()["id"]
    assert wait_for(jobs_client, job_id)["status"] == "succeeded"
    body = assert_problem(jobs_client.delete(f"/jobs/{job_id}"), 409, "job_already_finished")
    assert "succeeded" in body["detail"]


def test_wrong_method(jobs_client: httpx.Client) -> None:
    assert_problem(jobs_client.put(f"/jobs/{UNKNOWN_ID}"), 405, "method_not_allowed")
