"""OpenAPI fragments shared by routes: the multipart upload body and the problem responses."""

from __future__ import annotations

from typing import Any, Final

from service.schemas import Problem

AUDIO_UPLOAD_BODY: Final[dict[str, Any]] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "WAV, FLAC, MP3, OGG (Vorbis/Opus), M4A/AAC or WebM; "
                        "any sampling rate from 8 kHz, any channel count",
                    }
                },
                "additionalProperties": False,
            }
        }
    },
}

_PROBLEM_CONTENT: Final = {"application/problem+json": {"schema": Problem.model_json_schema()}}

PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"description": description, "content": _PROBLEM_CONTENT}
    for status, description in (
        (400, "Malformed multipart form (invalid_form)"),
        (404, "Unknown model (unknown_model)"),
        (413, "Upload or audio too large or too long (payload_too_large, audio_too_long)"),
        (
            415,
            "Not audio, unsupported format or not multipart "
            "(not_audio, unsupported_format, wrong_content_type)",
        ),
        (
            422,
            "Unusable audio or request (empty_audio, corrupt_audio, invalid_samples, "
            "sampling_rate_too_low, too_many_channels, audio_too_short, no_speech, missing_field, "
            "unexpected_field, invalid_parameter)",
        ),
    )
}
