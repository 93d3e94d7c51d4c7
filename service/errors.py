"""The service's exception hierarchy.

Every failure a client can cause is a :class:`ServiceError` subclass with a stable ``code``,
an HTTP status and a message that says what to fix. Library errors are wrapped where they
enter (``raise CorruptAudio(...) from exc``); only the API edge turns them into
``application/problem+json`` responses (see ``service/api/problems.py``).
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """Base of every error the service reports to a client."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InputError(ServiceError):
    """A problem with what the client sent (always a 4xx)."""

    status: ClassVar[int] = 400


class MissingField(InputError):
    code = "missing_field"
    status = 422
    title = "Required form field missing"


class UnexpectedField(InputError):
    code = "unexpected_field"
    status = 422
    title = "Unexpected or repeated form field"


class WrongContentType(InputError):
    code = "wrong_content_type"
    status = 415
    title = "Request must be multipart/form-data"


class InvalidForm(InputError):
    code = "invalid_form"
    status = 400
    title = "Malformed multipart form"


class PayloadTooLarge(InputError):
    code = "payload_too_large"
    status = 413
    title = "Upload too large"


class EmptyAudio(InputError):
    code = "empty_audio"
    status = 422
    title = "Upload is empty"


class NotAudio(InputError):
    code = "not_audio"
    status = 415
    title = "Upload is not audio"


class UnsupportedFormat(InputError):
    code = "unsupported_format"
    status = 415
    title = "Audio format not supported"


class CorruptAudio(InputError):
    code = "corrupt_audio"
    status = 422
    title = "Audio could not be decoded"


class InvalidSamples(InputError):
    code = "invalid_samples"
    status = 422
    title = "Audio contains invalid samples"


class SamplingRateTooLow(InputError):
    code = "sampling_rate_too_low"
    status = 422
    title = "Sampling rate too low"


class TooManyChannels(InputError):
    code = "too_many_channels"
    status = 422
    title = "Too many audio channels"


class AudioTooShort(InputError):
    code = "audio_too_short"
    status = 422
    title = "Audio too short"


class AudioTooLong(InputError):
    code = "audio_too_long"
    status = 413
    title = "Audio too long"


class NoSpeech(InputError):
    code = "no_speech"
    status = 422
    title = "No speech found"


class UnknownModel(InputError):
    code = "unknown_model"
    status = 404
    title = "Unknown model"


class InvalidParameter(InputError):
    code = "invalid_parameter"
    status = 422
    title = "Invalid request parameter"


class RouteNotFound(InputError):
    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(InputError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class TooManyFiles(InputError):
    code = "too_many_files"
    status = 413
    title = "Too many files in one job"


class JobTooLarge(InputError):
    code = "job_too_large"
    status = 413
    title = "Job audio too large"


class InvalidArchive(InputError):
    code = "invalid_archive"
    status = 422
    title = "Archive could not be read"


class CallbackNotAllowed(InputError):
    code = "callback_not_allowed"
    status = 422
    title = "Callback URL not allowed"


class InvalidIdempotencyKey(InputError):
    code = "invalid_idempotency_key"
    status = 400
    title = "Malformed Idempotency-Key header"


class IdempotencyKeyReused(InputError):
    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency-Key already used for a different request"


class JobNotFound(InputError):
    code = "job_not_found"
    status = 404
    title = "No such job"


class JobAlreadyFinished(InputError):
    code = "job_already_finished"
    status = 409
    title = "Job already finished"


class Unauthorized(InputError):
    """No valid API key (``SER_API_KEYS`` is set); answered with ``WWW-Authenticate``."""

    code = "unauthorized"
    status = 401
    title = "API key missing or not valid"


class Overloaded(ServiceError):
    """Every analysis slot is busy and the wait queue is full, or the wait timed out;
    answered with ``Retry-After``."""

    code = "overloaded"
    status = 503
    title = "Service overloaded"


class RequestTimedOut(ServiceError):
    """The request took longer than ``SER_REQUEST_TIMEOUT_S`` after it was admitted."""

    code = "request_timeout"
    status = 503
    title = "Request took too long"


class QueueUnavailable(ServiceError):
    """The job queue (Redis) cannot be reached or is not configured; /predict is unaffected."""

    code = "queue_unavailable"
    status = 503
    title = "Batch-job queue unavailable"


class ModelUnavailable(ServiceError):
    """A worker does not serve the model (name, version and sha256) a job was submitted for."""

    code = "model_unavailable"
    status = 503
    title = "Model not available on the worker"


class ProcessingFailed(ServiceError):
    """A file of a batch job failed on every attempt (worker crash, time limit, server fault)."""

    code = "processing_failed"
    status = 500
    title = "File could not be processed"


class ModelLoadError(Exception):
    """A model directory breaks the manifest contract; raised at start-up, never per request.

    The message names the file and, where it applies, the ONNX node.
    """
