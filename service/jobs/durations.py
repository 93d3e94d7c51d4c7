"""Audio duration from container headers, and the per-file time limit it sets.

Read at submission, without decoding: libsndfile reads the frame count of WAV/FLAC/Ogg
Vorbis headers, FFmpeg (PyAV) the declared duration of the other containers. A file whose
header says nothing (or is not audio) gets the limit of the longest accepted audio.
"""

from __future__ import annotations

import io
import math

import av
import av.error
import soundfile

from service.config import Settings


def header_duration_s(data: bytes) -> float | None:
    """Duration declared by the container header, or ``None`` when there is none."""
    duration_s = _soundfile_duration_s(data)
    if duration_s is None:
        duration_s = _pyav_duration_s(data)
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0.0:
        return None
    return duration_s


def file_timeout_s(duration_s: float | None, settings: Settings) -> int:
    """Seconds a worker may spend on one file: base + per-audio-second x duration.

    The duration is capped at ``max_duration_s`` (decoding stops there) and taken as that cap
    when unknown.
    """
    audio_s = settings.max_duration_s if duration_s is None else duration_s
    audio_s = min(audio_s, settings.max_duration_s)
    return math.ceil(settings.job_timeout_base_s + settings.job_timeout_per_audio_s * audio_s)


def _soundfile_duration_s(data: bytes) -> float | None:
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    if info.samplerate <= 0 or info.frames <= 0:
        return None
    return float(info.frames) / float(info.samplerate)


def _pyav_duration_s(data: bytes) -> float | None:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            duration_us = container.duration
    except (av.error.FFmpegError, OSError, ValueError, IndexError):
        return None
    return None if duration_us is None else float(duration_us) / 1_000_000.0
