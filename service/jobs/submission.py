"""A ``POST /jobs`` request -> the files of a job: many ``file`` parts, or one archive.

The form is parsed here (not by FastAPI's ``File()``) so that each malformed form gets its own
problem code, as in ``service/api/upload.py``. Files that are not audio are *not* refused here:
each becomes that file's error in the job, as ``/predict`` would answer it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from service.config import Settings
from service.errors import (
    InvalidForm,
    InvalidIdempotencyKey,
    JobTooLarge,
    MissingField,
    TooManyFiles,
    UnexpectedField,
    WrongContentType,
)
from service.jobs.archives import ArchiveLimits, is_archive, unpack

FILE_FIELD: Final = "file"
MAX_FORM_FIELDS: Final = 16
MAX_NAME_CHARS: Final = 255
IDEMPOTENCY_KEY_MAX_CHARS: Final = 255
# Visible ASCII (0x21-0x7e), no spaces; ECMA-262 and Python syntax alike, as the OpenAPI
# declaration of the header (service/api/routes/jobs.py) uses the same string.
IDEMPOTENCY_KEY_PATTERN: Final = rf"^[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_CHARS}}}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_TOO_MANY_FILES = "Too many files"


async def read_job_files(request: Request, settings: Settings) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every file: the ``file`` parts, or the members of one archive part.

    Raises:
        WrongContentType, InvalidForm, MissingField, UnexpectedField: as for ``/predict``.
        TooManyFiles: more than ``SER_JOB_MAX_FILES`` files.
        JobTooLarge: more than ``SER_JOB_MAX_AUDIO_BYTES`` in all.
        InvalidArchive, PayloadTooLarge: an unreadable archive, or an oversized member.
    """
    _check_content_type(request.headers.get("content-type", ""))
    form = await _parse(request, settings)
    try:
        files = [(_name(upload, i), await upload.read()) for i, upload in enumerate(_uploads(form))]
    finally:
        await form.close()
    if len(files) == 1 and is_archive(files[0][1]):
        files = unpack(files[0][1], _archive_limits(settings))
    _check_total(files, settings.job_max_audio_bytes)
    return files


def check_idempotency_key(value: str | None) -> str | None:
    """The header value when well-formed (1-255 visible ASCII characters).

    Raises:
        InvalidIdempotencyKey: empty, too long, or with spaces or non-ASCII characters.
    """
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters "
            "without spaces "
            "(a UUID is a good key)"
        )
    return value


def fingerprint(files: Sequence[tuple[str, bytes]], request_options: str) -> str:
    """sha256 over the options and every file's name and content, to recognise a retry."""
    digest = hashlib.sha256(request_options.encode())
    for name, data in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _check_content_type(content_type: str) -> None:
    if not content_type.lower().startswith("multipart/form-data"):
        raise WrongContentType(
            f"got Content-Type '{content_type[:100]}'; send the audio as multipart/form-data, "
            f"one '{FILE_FIELD}' part per recording (curl -F {FILE_FIELD}=@a.wav "
            f"-F {FILE_FIELD}=@b.wav ...) or one zip/tar archive as '{FILE_FIELD}'"
        )


async def _parse(request: Request, settings: Settings) -> FormData:
    try:
        return await request.form(
            max_files=settings.job_max_files,
            max_fields=MAX_FORM_FIELDS,
            max_part_size=settings.max_form_field_bytes,
        )
    except MultiPartException as exc:
        raise _form_error(exc.message, settings) from exc
    except HTTPException as exc:  # Starlette re-raises parser errors this way inside an app
        raise _form_error(str(exc.detail), settings) from exc


def _form_error(message: str, settings: Settings) -> InvalidForm | TooManyFiles:
    if message.startswith(_TOO_MANY_FILES):
        return TooManyFiles(
            f"more than {settings.job_max_files} files in one job (SER_JOB_MAX_FILES); "
            "split them into several jobs"
        )
    return InvalidForm(f"the multipart body could not be read: {message}")


def _uploads(form: FormData) -> list[UploadFile]:
    unexpected = sorted({key for key in form if key != FILE_FIELD})
    if unexpected:
        raise UnexpectedField(
            f"unexpected form fields {unexpected[:5]}; send only '{FILE_FIELD}' parts (options "
            "such as the model or the callback go in the query string: ?model=name)"
        )
    values = form.getlist(FILE_FIELD)
    if not values:
        raise MissingField(
            f"the form has no '{FILE_FIELD}' part; attach each recording as '{FILE_FIELD}'"
        )
    uploads = [value for value in values if isinstance(value, UploadFile)]
    if len(uploads) != len(values):
        raise MissingField(f"every '{FILE_FIELD}' must be a file part, not a text value")
    return uploads


def _name(upload: UploadFile, index: int) -> str:
    name = (upload.filename or "").strip() or f"file-{index}"
    return name[:MAX_NAME_CHARS]


def _archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(
        max_files=settings.job_max_files,
        max_file_bytes=settings.max_upload_bytes,
        max_total_bytes=settings.job_max_audio_bytes,
    )


def _check_total(files: Sequence[tuple[str, bytes]], max_bytes: int) -> None:
    total_bytes = sum(len(data) for _, data in files)
    if total_bytes > max_bytes:
        raise JobTooLarge(
            f"the job holds {total_bytes} bytes of audio; the limit is {max_bytes} bytes "
            "(SER_JOB_MAX_AUDIO_BYTES); split it into several jobs"
        )
