"""Stored job data -> the job documents (status, results as JSON, JSONL and CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from service.jobs.models import FileError, FileOutcome, JobRecord
from service.jobs.schemas import (
    FileErrorEntry,
    JobCallback,
    JobLinks,
    JobProgress,
    JobStatus,
)
from service.schemas import ModelRef

_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


def job_status(record: JobRecord, errors: dict[int, FileError], names: list[str]) -> JobStatus:
    """The status document of a job."""
    return JobStatus(
        id=record.job_id,
        status=record.status,
        analysis=record.options.analysis,
        model=_model_ref(record),
        progress=JobProgress(
            done=record.done,
            total=record.total,
            succeeded=record.done - record.failed,
            failed=record.failed,
        ),
        errors=[
            FileErrorEntry(index=index, name=_name(names, index), **error.as_dict())
            for index, error in sorted(errors.items())
        ],
        created_at=_time(record.created_at_s),
        started_at=None if record.started_at_s is None else _time(record.started_at_s),
        finished_at=None if record.finished_at_s is None else _time(record.finished_at_s),
        expires_at=_time(record.expires_at_s),
        callback=_callback(record),
        links=JobLinks(self=job_path(record.job_id), results=job_path(record.job_id) + "/results"),
    )


def job_path(job_id: str) -> str:
    return f"/jobs/{job_id}"


def file_entries(
    record: JobRecord, names: list[str], outcomes: dict[int, FileOutcome]
) -> Iterator[dict[str, Any]]:
    """One plain dict per file, in submission order (the JSON and JSONL rows)."""
    waiting = "canceled" if record.status == "canceled" else "pending"
    for index in range(record.total):
        outcome = outcomes.get(index)
        entry: dict[str, Any] = {"index": index, "name": _name(names, index)}
        if outcome is None:
            entry.update(status=waiting, result=None, error=None)
        elif outcome.error is not None:
            entry.update(status="failed", result=None, error=outcome.error.as_dict())
        else:
            entry.update(status="succeeded", result=outcome.result, error=None)
        yield entry


def results_json(record: JobRecord, names: list[str], outcomes: dict[int, FileOutcome]) -> bytes:
    document = {
        "id": record.job_id,
        "status": record.status,
        "model": _model_ref(record).model_dump(),
        "files": list(file_entries(record, names, outcomes)),
    }
    return json.dumps(document).encode()


def results_jsonl(record: JobRecord, names: list[str], outcomes: dict[int, FileOutcome]) -> bytes:
    lines = (json.dumps(entry) + "\n" for entry in file_entries(record, names, outcomes))
    return "".join(lines).encode()


def csv_columns(labels: tuple[str, ...]) -> list[str]:
    """Column names of the CSV results for a model with ``labels``."""
    return [
        "index",
        "name",
        "status",
        "segment",
        "start_s",
        "end_s",
        "label",
        "confidence",
        *(f"p_{label}" for label in labels),
        *(f"dist_{label}" for label in labels),
        "is_blend",
        "valence",
        "arousal",
        "dominance",
        "octant",
        "intensity",
        "radius",
        "azimuth_deg",
        "elevation_deg",
        "uncertainty",
        "abstain",
        "duration_s",
        "speech_ratio",
        "snr_db",
        "warnings",
        "error_code",
        "error_detail",
    ]


def results_csv(record: JobRecord, names: list[str], outcomes: dict[int, FileOutcome]) -> bytes:
    """One row per file for the whole-file estimate (``segment`` = ``all``) and one per segment
    (``segment`` = 0, 1, ...); a failed or unfinished file has one row with its status."""
    buffer = io.StringIO()
    columns = csv_columns(record.model.labels)
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for entry in file_entries(record, names, outcomes):
        writer.writerows(_csv_rows(entry, record.model.labels))
    return buffer.getvalue().encode()


def _csv_rows(entry: dict[str, Any], labels: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    base = {"index": entry["index"], "name": _cell(entry["name"]), "status": entry["status"]}
    result = entry["result"]
    if result is None:
        error = entry["error"] or {}
        yield {
            **base,
            "error_code": error.get("code", ""),
            "error_detail": _cell(error.get("detail", "")),
        }
        return
    quality = result["quality"]
    file_fields = {
        "duration_s": quality["duration_s"],
        "speech_ratio": quality["speech_ratio"],
        "snr_db": "" if quality["snr_db"] is None else quality["snr_db"],
        "warnings": ";".join(quality["warnings"]),
    }
    whole = {"segment": "all", "start_s": 0.0, "end_s": result["audio"]["duration_s"]}
    yield {**base, **whole, **_estimate_cells(result, labels), **file_fields}
    for number, segment in enumerate(result["segments"]):
        span = {"segment": number, "start_s": segment["start_s"], "end_s": segment["end_s"]}
        yield {**base, **span, **_estimate_cells(segment, labels), **file_fields}


def _estimate_cells(estimate: dict[str, Any], labels: tuple[str, ...]) -> dict[str, Any]:
    cells: dict[str, Any] = {
        "label": estimate["label"],
        "confidence": estimate["confidence"],
        "is_blend": estimate["mixed"]["is_blend"],
        "uncertainty": estimate["uncertainty"]["value"],
        "abstain": estimate["uncertainty"]["abstain"],
    }
    for label in labels:
        cells[f"p_{label}"] = estimate["probabilities"].get(label, "")
        cells[f"dist_{label}"] = estimate["distribution"].get(label, "")
    if estimate["vad"] is not None:
        cells.update(estimate["vad"])
    if estimate["sphere"] is not None:
        sphere = estimate["sphere"]
        cells.update({key: sphere[key] for key in ("octant", "intensity", "radius")})
        cells.update(azimuth_deg=sphere["azimuth_deg"], elevation_deg=sphere["elevation_deg"])
    return cells


def _cell(text: str) -> str:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _name(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else f"file-{index}"


def _model_ref(record: JobRecord) -> ModelRef:
    model = record.model
    return ModelRef(name=model.name, version=model.version, sha256=model.sha256)


def _callback(record: JobRecord) -> JobCallback | None:
    if record.callback_url is None:
        return None
    return JobCallback(
        url=record.callback_url,
        state=record.callback_state or "waiting",
        attempts=record.callback_attempts,
        last_status=record.callback_status,
    )


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
