"""The whole cycle over real HTTP: submit, poll, results identical to /predict, in every format."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
import zipfile

import httpx
import numpy as np
import pytest

from tests.audio_factory import FORMATS, load_clip, png_bytes
from tests.service.jobs.helpers import (
    as_parts,
    predict,
    ravdess_clips,
    stable,
    submit,
    wait_for,
)


def test_submit_poll_and_results_match_predict(jobs_client: httpx.Client) -> None:
    clips = ravdess_clips(4)
    response = submit(jobs_client, as_parts(clips))
    accepted = response.json()
    job_id = accepted["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert response.headers["Location"] == f"/jobs/{job_id}"
    assert accepted["status"] in {"queued", "running"}
    assert accepted["progress"]["total"] == 4
    assert accepted["links"] == {"self": f"/jobs/{job_id}", "results": f"/jobs/{job_id}/results"}

    status = wait_for(jobs_client, job_id)
    assert status["status"] == "succeeded"
    assert status["progress"] == {"done": 4, "total": 4, "succeeded": 4, "failed": 0}
    assert status["errors"] == []
    assert status["model"]["name"] == "tiny" and status["model"]["version"] == "1.10.0"
    assert (
        status["created_at"] <= status["started_at"] <= status["finished_at"] < status["expires_at"]
    )

    results = jobs_client.get(f"/jobs/{job_id}/results").json()
    assert results["status"] == "succeeded"
    assert [entry["name"] for entry in results["files"]] == [clip.name for clip in clips]
    for clip, entry in zip(clips, results["files"], strict=True):
        assert entry["status"] == "succeeded" and entry["error"] is None
        expected = predict(jobs_client, clip.name, clip.read_bytes())
        assert stable(entry["result"]) == stable(expected)
        assert entry["result"]["request_id"] == f"{job_id}/{entry['index']}"


def test_model_option_is_applied_to_every_file(jobs_client: httpx.Client) -> None:
    clip = ravdess_clips(1)[0]
    response = submit(jobs_client, as_parts([clip]), params={"model": "tiny@1.0.0"})
    job_id = response.json()["id"]
    assert response.json()["model"]["version"] == "1.0.0"
    wait_for(jobs_client, job_id)
    result = jobs_client.get(f"/jobs/{job_id}/results").json()["files"][0]["result"]
    expected = predict(jobs_client, clip.name, clip.read_bytes(), model="tiny@1.0.0")
    assert stable(result) == stable(expected)


def test_bad_files_get_per_file_errors(jobs_client: httpx.Client) -> None:
    clip = ravdess_clips(1)[0]
    silence = FORMATS["wav_pcm_16"].encode(np.zeros((1, 16000), dtype=np.float32), 16000)
    parts = [
        ("file", (clip.name, clip.read_bytes())),
        ("file", ("picture.png", png_bytes())),
        ("file", ("silence.wav", silence)),
        ("file", ("empty.wav", b"")),
    ]
    job_id = submit(jobs_client, parts).json()["id"]
    status = wait_for(jobs_client, job_id)
    assert status["status"] == "succeeded"
    assert status["progress"] == {"done": 4, "total": 4, "succeeded": 1, "failed": 3}
    errors = {error["name"]: error for error in status["errors"]}
    assert errors["picture.png"]["code"] == "not_audio" and errors["picture.png"]["status"] == 415
    assert errors["silence.wav"]["code"] == "no_speech" and errors["silence.wav"]["index"] == 2
    assert errors["empty.wav"]["code"] == "empty_audio"
    # the same error /predict answers for the same file
    direct = jobs_client.post("/predict", files={"file": ("picture.png", png_bytes())}).json()
    assert errors["picture.png"]["detail"] == direct["detail"]


def test_a_job_where_no_file_gives_a_result_fails(jobs_client: httpx.Client) -> None:
    parts = [("file", ("a.png", png_bytes())), ("file", ("b.txt", b"just some text, not audio"))]
    status = wait_for(jobs_client, submit(jobs_client, parts).json()["id"])
    assert status["status"] == "failed"
    assert [error["code"] for error in status["errors"]] == ["not_audio", "not_audio"]


def test_jsonl_has_one_line_per_file(jobs_client: httpx.Client) -> None:
    clips = ravdess_clips(2, start=10)
    parts = [*as_parts(clips), ("file", ("bad.png", png_bytes()))]
    job_id = submit(jobs_client, parts).json()["id"]
    wait_for(jobs_client, job_id)
    response = jobs_client.get(f"/jobs/{job_id}/results", params={"format": "jsonl"})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert [line["status"] for line in lines] == ["succeeded", "succeeded", "failed"]
    assert lines[2]["error"]["code"] == "not_audio" and lines[2]["result"] is None
    full = jobs_client.get(f"/jobs/{job_id}/results").json()["files"]
    assert lines == full


def test_csv_has_a_row_per_file_and_segment(jobs_client: httpx.Client) -> None:
    signal = np.concatenate([load_clip(path)[0] for path in ravdess_clips(3, start=20)], axis=1)
    long_flac = FORMATS["flac"].encode(signal, 16000)
    parts = [("file", ("long.flac", long_flac)), ("file", ("=cmd.png", png_bytes()))]
    job_id = submit(jobs_client, parts).json()["id"]
    wait_for(jobs_client, job_id)
    response = jobs_client.get(f"/jobs/{job_id}/results", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert f"job-{job_id}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = predict(jobs_client, "long.flac", long_flac)
    segments = expected["segments"]
    assert len(segments) >= 3
    assert len(rows) == 1 + len(segments) + 1
    whole, *segment_rows, failed = rows
    assert whole["segment"] == "all" and whole["label"] == expected["label"]
    assert float(whole["confidence"]) == pytest.approx(expected["confidence"])
    assert float(whole["p_angry"]) == pytest.approx(expected["probabilities"]["angry"])
    assert float(whole["valence"]) == pytest.approx(expected["vad"]["valence"])
    assert whole["octant"] == expected["sphere"]["octant"]
    for row, segment in zip(segment_rows, segments, strict=True):
        assert float(row["start_s"]) == pytest.approx(segment["start_s"])
        assert float(row["end_s"]) == pytest.approx(segment["end_s"])
        assert row["label"] == segment["label"]
    assert failed["status"] == "failed" and failed["error_code"] == "not_audio"
    assert failed["name"] == "'=cmd.png"  # no spreadsheet formula injection
    assert failed["label"] == ""


def _zip(paths: list, junk: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.writestr(f"speakers/{path.name}", path.read_bytes())
        if junk:
            archive.writestr("__MACOSX/._x", b"junk")
            archive.writestr("speakers/.DS_Store", b"junk")
    return buffer.getvalue()


def _tar_gz(paths: list) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in paths:
            info = tarfile.TarInfo(f"clips/{path.name}")
            data = path.read_bytes()
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("pack", [_zip, _tar_gz], ids=["zip", "tar.gz"])
def test_an_archive_is_unpacked_into_files(jobs_client: httpx.Client, pack: object) -> None:
    clips = ravdess_clips(3, start=30)
    archive = pack(clips)  # type: ignore[operator]
    job_id = submit(jobs_client, [("file", ("batch.archive", archive))]).json()["id"]
    status = wait_for(jobs_client, job_id)
    assert status["progress"]["total"] == 3 and status["status"] == "succeeded"
    files = jobs_client.get(f"/jobs/{job_id}/results").json()["files"]
    assert [entry["name"].split("/")[-1] for entry in files] == [clip.name for clip in clips]
    expected = predict(jobs_client, clips[0].name, clips[0].read_bytes())
    assert stable(files[0]["result"]) == stable(expected)


def test_explain_jobs_match_explain(jobs_client: httpx.Client) -> None:
    clips = ravdess_clips(2)
    response = submit(jobs_client, as_parts(clips), params={"analysis": "explain"})
    status = wait_for(jobs_client, response.json()["id"])
    assert status["status"] == "succeeded", status
    results = jobs_client.get(f"/jobs/{status['id']}/results").json()
    for clip, entry in zip(clips, results["files"], strict=True):
        reply = jobs_client.post("/explain", files={"file": (clip.name, clip.read_bytes())})
        assert reply.status_code == 200, reply.text
        expected, got = reply.json(), entry["result"]
        assert stable(got) | {"explanation": None} == stable(expected) | {"explanation": None}
        without_timing = {"timing_ms": None}
        assert got["explanation"] | without_timing == expected["explanation"] | without_timing
        assert len(got["explanation"]["cues"]) >= 8


def test_unknown_analysis_is_refused(jobs_client: httpx.Client) -> None:
    clip = ravdess_clips(1)[0]
    response = jobs_client.post("/jobs", files=as_parts([clip]), params={"analysis": "transcribe"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
