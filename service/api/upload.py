"""Read exactly one audio file from a ``multipart/form-data`` request.

The form is parsed here rather than through FastAPI's ``File()`` parameter so that every
malformed form gets its own problem code instead of a generic "error parsing the body".
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from service.errors import InvalidForm, MissingField, UnexpectedField, WrongContentType

FILE_FIELD: Final = "file"
MAX_FORM_FILES: Final = 4
"""Parts beyond this are refused by the parser; more than one ``file`` is refused by us."""
MAX_FORM_FIELDS: Final = 16


async def read_single_file(request: Request, max_field_bytes: int) -> tuple[bytes, str | None]:
    """Return the bytes and file name of the one ``file`` part of the request.

    Raises:
        WrongContentType: the body is not ``multipart/form-data``.
        InvalidForm: the multipart body is malformed or has too many parts.
        MissingField: there is no ``file`` part, or it is not a file.
        UnexpectedField: ``file`` is repeated, or another field was sent.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise WrongContentType(
            f"got Content-Type '{content_type[:100]}'; send the audio as multipart/form-data "
            f"with the field '{FILE_FIELD}' (curl -F {FILE_FIELD}=@speech.wav ...)"
        )
    form = await _parse(request, max_field_bytes)
    try:
        upload = _the_file(form)
        return await upload.read(), upload.filename
    finally:
        await form.close()


async def _parse(request: Request, max_field_bytes: int) -> FormData:
    try:
        return await request.form(
            max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS, max_part_size=max_field_bytes
        )
    except MultiPartException as exc:
        raise InvalidForm(f"the multipart body could not be read: {exc.message}") from exc
    except HTTPException as exc:  # Starlette re-raises parser errors this way inside an app
        raise InvalidForm(f"the multipart body could not be read: {exc.detail}") from exc


def _the_file(form: FormData) -> UploadFile:
    unexpected = sorted({key for key in form if key != FILE_FIELD})
    if unexpected:
        raise UnexpectedField(
            f"unexpected form fields {unexpected[:5]}; send only '{FILE_FIELD}' "
            "(options such as the model go in the query string: ?model=name)"
        )
    values = form.getlist(FILE_FIELD)
    if not values:
        raise MissingField(
            f"the form has no '{FILE_FIELD}' field; attach the audio as '{FILE_FIELD}'"
        )
    if len(values) > 1:
        raise UnexpectedField(
            f"'{FILE_FIELD}' was sent {len(values)} times; send one file per request "
            "(use POST /jobs for many files)"
        )
    value = values[0]
    if not isinstance(value, UploadFile):
        raise MissingField(f"'{FILE_FIELD}' must be a file part with the audio, not a text value")
    return value
