"""Upload bytes -> float32 ``(channels, samples)`` signal, within limits, or a ``ServiceError``.

Two backends, chosen by :func:`service.audio.formats.sniff_format`:

- **soundfile** (libsndfile) for WAV/RF64, FLAC and Ogg Vorbis: these headers declare the
  exact number of frames, so the limits are checked *before* reading and the read asks for
  exactly that many frames (never more than ``max_duration_s`` worth). A FLAC stream whose
  header leaves the length unknown (written to a pipe), or a FLAC/Vorbis stream libsndfile
  finds empty, goes to PyAV instead.
- **PyAV** (FFmpeg) for MP3, Ogg Opus/FLAC, MP4/M4A (AAC), ADTS AAC and WebM/Matroska, always
  from memory and with the demuxer named. Decoding counts samples frame by frame and stops with
  ``AudioTooLong`` the moment the limit is passed, so an hour-long file or a decompression bomb
  costs at most ``max_duration_s`` of samples. Every frame is converted by FFmpeg to packed
  float32 before Python reads it: PyAV 18 mis-reads planar frames of 8 or more channels.

Damage policy (measured with libsndfile 1.2.2 and FFmpeg as bundled with PyAV 18):

- WAV: libsndfile clamps the declared ``data`` size to the bytes present, so a header declaring
  an absurd size (0xFFFFFFFF, as streaming writers leave it) or a file cut short decodes the
  PCM that is there: PCM bytes are never invalid. A header libsndfile rejects (no ``fmt ``
  or ``data`` chunk, zero channels, zero rate) is ``CorruptAudio``.
- Any decoder or demuxer error (FLAC lost sync, Ogg CRC failures, MP3/AAC invalid frames,
  a truncated MP4) is ``CorruptAudio``.
- Containers that state an exact duration (Ogg, MP4, WebM/Matroska) and decode to less than
  half of it are ``CorruptAudio`` (FFmpeg conceals some damage silently, e.g. in WebM).
- Ogg must be whole pages back to back to the last byte: FFmpeg's Ogg demuxer skips what it
  cannot read and takes the duration from the last good page, so a cut Ogg Opus file, or one
  with a damaged stretch, would otherwise decode silently as a shorter recording (found by the
  hostile-input corpus). Damage inside a page's payload is left to the decoders.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Final

import av
import av.error
import numpy as np
import soundfile

from service.audio.formats import SUPPORTED_FORMATS, SniffedFormat, sniff_format
from service.errors import (
    AudioTooLong,
    CorruptAudio,
    NotAudio,
    SamplingRateTooLow,
    TooManyChannels,
    UnsupportedFormat,
)

_SOUNDFILE_CODECS: Final[dict[str, str]] = {  # libsndfile subtype -> the service's codec name
    "PCM_U8": "pcm_u8",
    "PCM_S8": "pcm_s8",
    "PCM_16": "pcm_s16",
    "PCM_24": "pcm_s24",
    "PCM_32": "pcm_s32",
    "FLOAT": "pcm_f32",
    "DOUBLE": "pcm_f64",
    "ULAW": "ulaw",
    "ALAW": "alaw",
    "IMA_ADPCM": "ima_adpcm",
    "MS_ADPCM": "ms_adpcm",
    "GSM610": "gsm610",
    "VORBIS": "vorbis",
}
_UNKNOWN_LENGTH_FRAMES: Final[int] = 2**62  # libsndfile reports SF_COUNT_MAX (2**63 - 1)
_PYAV_DEMUXERS: Final[dict[str, str]] = {  # service container -> FFmpeg demuxer name
    "mp3": "mp3",
    "adts": "aac",
    "ogg": "ogg",
    "mp4": "mp4",
    "webm": "matroska",
    "matroska": "matroska",
    "flac": "flac",
}
_EXACT_DURATION_CONTAINERS: Final[frozenset[str]] = frozenset({"ogg", "mp4", "webm", "matroska"})
"""Containers whose stated duration is written by the muxer, not estimated from the bitrate."""
_MIN_DECODED_SHARE: Final[float] = 0.5  # design choice: below half the stated length = damage
_MICROSECONDS_PER_S: Final[float] = 1e6  # FFmpeg AV_TIME_BASE
_OGG_CAPTURE: Final[bytes] = b"OggS"  # RFC 3533 section 6: page header layout
_OGG_PAGE_HEADER_BYTES: Final[int] = 27  # then one lacing value per segment, then the body
_OGG_SEGMENT_COUNT_AT: Final[int] = 26
_PACKED_FLOAT: Final[str] = "flt"  # FFmpeg AV_SAMPLE_FMT_FLT: float32 interleaved, [-1, 1]
_FIX_HINT: Final[str] = "re-export or re-encode the recording and upload the complete file"


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds enforced while decoding.

    ``max_sampling_rate_hz`` defaults to 384 kHz, the highest rate of common audio interfaces;
    it stops a forged header from turning a short file into a huge sample count.
    """

    max_duration_s: float
    min_sampling_rate_hz: int = 8000
    max_channels: int = 32
    max_sampling_rate_hz: int = 384_000

    def __post_init__(self) -> None:
        if not self.max_duration_s > 0 or self.min_sampling_rate_hz <= 0 or self.max_channels < 1:
            raise ValueError(f"DecodeLimits need positive bounds, got {self}")

    def max_frames(self, sampling_rate_hz: int) -> int:
        """Most frames allowed at ``sampling_rate_hz``."""
        return math.floor(self.max_duration_s * sampling_rate_hz)


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded upload: ``signal`` is float32 ``(channels, samples)``, nominally in [-1, 1]."""

    signal: np.ndarray
    sampling_rate_hz: int
    container: str
    codec: str

    @property
    def channels(self) -> int:
        """Number of channels (rows of ``signal``)."""
        return int(self.signal.shape[0])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return int(self.signal.shape[1]) / self.sampling_rate_hz


def decode_audio(data: bytes, limits: DecodeLimits) -> DecodedAudio:
    """Decode a whole upload.

    Raises:
        EmptyAudio, NotAudio, UnsupportedFormat: see :func:`sniff_format`.
        CorruptAudio: the bytes are damaged (see the module docstring for the policy).
        SamplingRateTooLow: below ``limits.min_sampling_rate_hz``.
        TooManyChannels: above ``limits.max_channels``.
        AudioTooLong: longer than ``limits.max_duration_s`` (decoding stops there).
    """
    sniffed = sniff_format(data)
    if sniffed.container == "ogg":
        _check_ogg_pages(data)
    if sniffed.backend == "soundfile":
        decoded = _decode_with_soundfile(data, sniffed, limits)
        if decoded is not None:
            return decoded
    return _decode_with_pyav(data, sniffed, limits)


def check_stream(
    sampling_rate_hz: int, channels: int, limits: DecodeLimits, declared_duration_s: float | None
) -> None:
    """Refuse a stream from its parameters alone, before any sample is decoded."""
    if channels < 1 or sampling_rate_hz < 1:
        raise CorruptAudio(
            f"the header declares {channels} channels at {sampling_rate_hz} Hz; {_FIX_HINT}"
        )
    if sampling_rate_hz < limits.min_sampling_rate_hz:
        raise SamplingRateTooLow(
            f"the audio is sampled at {sampling_rate_hz} Hz; record or export it at "
            f"{limits.min_sampling_rate_hz} Hz or more (16 kHz or higher is best)"
        )
    if sampling_rate_hz > limits.max_sampling_rate_hz:
        raise UnsupportedFormat(
            f"the audio is sampled at {sampling_rate_hz} Hz, above the supported "
            f"{limits.max_sampling_rate_hz} Hz; resample it to 48 kHz or less"
        )
    if channels > limits.max_channels:
        raise TooManyChannels(
            f"the audio has {channels} channels; at most {limits.max_channels} are accepted: "
            "mix it down to mono or stereo"
        )
    if declared_duration_s is not None and declared_duration_s > limits.max_duration_s:
        raise _too_long(declared_duration_s, limits, "the header declares")


def _too_long(duration_s: float, limits: DecodeLimits, what: str) -> AudioTooLong:
    return AudioTooLong(
        f"{what} {duration_s:.1f} s of audio; the limit is {limits.max_duration_s:g} s: "
        "trim or split the recording, or submit the parts as a batch job"
    )


def _check_ogg_pages(data: bytes) -> None:
    """Raise ``CorruptAudio`` unless ``data`` is whole Ogg pages, back to back, to its last byte.

    Walks the page headers only (27 bytes + lacing values each), not the payload.
    """
    offset = 0
    while offset < len(data):
        end = _ogg_page_end(data, offset)
        if end is None:
            raise CorruptAudio(
                f"the OGG file is damaged or truncated at byte {offset} of {len(data)} "
                f"(no whole page there); {_FIX_HINT}"
            )
        offset = end


def _ogg_page_end(data: bytes, start: int) -> int | None:
    """Byte offset just past the Ogg page at ``start``; ``None`` if none starts there or it is
    cut short."""
    lacing_at = start + _OGG_PAGE_HEADER_BYTES
    if lacing_at > len(data) or data[start : start + len(_OGG_CAPTURE)] != _OGG_CAPTURE:
        return None
    segments = data[start + _OGG_SEGMENT_COUNT_AT]
    lacing = data[lacing_at : lacing_at + segments]
    end = lacing_at + segments + sum(lacing)
    return end if len(lacing) == segments and end <= len(data) else None


# --- soundfile backend ----------------------------------------------------------------------


def _decode_with_soundfile(
    data: bytes, sniffed: SniffedFormat, limits: DecodeLimits
) -> DecodedAudio | None:
    """Decode with libsndfile; ``None`` hands over to PyAV.

    PyAV takes streams whose length libsndfile reports as unknown (streamed FLAC) or as zero
    in a compressed stream (libsndfile reports a damaged Ogg Vorbis file as empty; FFmpeg
    reports the damage).
    """
    is_compressed = sniffed.container in ("flac", "ogg")
    try:
        payload = data[sniffed.payload_offset :] if sniffed.payload_offset else data
        with soundfile.SoundFile(io.BytesIO(payload)) as file:
            if file.frames >= _UNKNOWN_LENGTH_FRAMES or (file.frames == 0 and is_compressed):
                return None
            check_stream(file.samplerate, file.channels, limits, file.frames / file.samplerate)
            frames = file.read(file.frames, dtype="float32", always_2d=True)
            codec = _SOUNDFILE_CODECS.get(file.subtype, file.subtype.lower())
    except soundfile.LibsndfileError as exc:
        raise CorruptAudio(_libsndfile_message(sniffed, exc)) from exc
    codec = "flac" if sniffed.container == "flac" else codec
    return DecodedAudio(np.ascontiguousarray(frames.T), file.samplerate, sniffed.container, codec)


def _libsndfile_message(sniffed: SniffedFormat, exc: soundfile.LibsndfileError) -> str:
    reason = str(exc.error_string).rstrip(".")
    return f"the {sniffed.container.upper()} file could not be decoded ({reason}); {_FIX_HINT}"


# --- PyAV backend ---------------------------------------------------------------------------


def _decode_with_pyav(data: bytes, sniffed: SniffedFormat, limits: DecodeLimits) -> DecodedAudio:
    demuxer = _PYAV_DEMUXERS[sniffed.container]
    try:
        with av.open(
            io.BytesIO(data), mode="r", format=demuxer, metadata_errors="replace"
        ) as container:
            stream = _audio_stream(container, sniffed)
            declared_duration_s = _declared_duration_s(container, sniffed)
            context = stream.codec_context
            check_stream(context.sample_rate, context.channels, limits, declared_duration_s)
            signal, sampling_rate_hz = _decode_frames(container, stream, limits)
            codec = str(context.codec.canonical_name)
    except av.error.FFmpegError as exc:
        raise CorruptAudio(_ffmpeg_message(sniffed, exc)) from exc
    _check_complete(signal.shape[1] / sampling_rate_hz, declared_duration_s, sniffed)
    return DecodedAudio(signal, sampling_rate_hz, sniffed.container, codec)


def _audio_stream(container: av.container.InputContainer, sniffed: SniffedFormat) -> av.AudioStream:
    if not container.streams.audio:
        raise NotAudio(
            f"the {sniffed.container.upper()} file has no audio track (a video or image?); "
            "upload a file with sound"
        )
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        raise UnsupportedFormat(
            f"no decoder for the audio codec of this {sniffed.container.upper()} file; "
            f"supported formats: {SUPPORTED_FORMATS}"
        )
    return stream


def _declared_duration_s(
    container: av.container.InputContainer, sniffed: SniffedFormat
) -> float | None:
    """The muxer-written duration, or ``None`` where FFmpeg would only estimate it."""
    if sniffed.container not in _EXACT_DURATION_CONTAINERS or container.duration is None:
        return None
    return float(container.duration) / _MICROSECONDS_PER_S


def _decode_frames(
    container: av.container.InputContainer, stream: av.AudioStream, limits: DecodeLimits
) -> tuple[np.ndarray, int]:
    """All frames of ``stream`` as ``(channels, samples)``; stops once past the limit."""
    blocks: list[np.ndarray] = []
    decoded_frames, first_shape = 0, None
    to_packed_float = av.AudioResampler(format=_PACKED_FLOAT)
    for frame in container.decode(stream):
        shape = (frame.rate, frame.layout.nb_channels)
        if first_shape is None:
            first_shape = shape
            check_stream(*shape, limits, None)
        elif shape != first_shape:
            raise CorruptAudio(
                f"the stream changes from {first_shape[0]} Hz x {first_shape[1]} channels to "
                f"{shape[0]} Hz x {shape[1]} mid-file; re-encode it with one format throughout"
            )
        decoded_frames += frame.samples
        if decoded_frames > limits.max_frames(frame.rate):
            raise _too_long(decoded_frames / frame.rate, limits, "decoding passed")
        blocks.extend(_packed_blocks(to_packed_float, frame))
    if first_shape is None:
        context = stream.codec_context
        return np.zeros((context.channels, 0), dtype=np.float32), context.sample_rate
    blocks.extend(_packed_blocks(to_packed_float, None))
    return np.concatenate(blocks, axis=1), first_shape[0]


def _packed_blocks(
    to_packed_float: av.AudioResampler, frame: av.AudioFrame | None
) -> list[np.ndarray]:
    """``frame`` (``None``: flush) converted by FFmpeg to packed float32, as ``(channels,
    samples)`` blocks in [-1, 1].

    Never touches a planar frame's planes from Python: PyAV 18 finds them by walking
    ``extended_data`` until a null pointer, which a frame of 8 planar channels does not have
    (the 9th "plane" is its line size read as an address: an 8-channel AAC upload crashed the
    process) and one of more channels has only past the end of its array. FFmpeg's own
    conversion reads exactly ``channels`` planes; the packed result is one plane.
    """
    try:
        converted = to_packed_float.resample(frame)
    except ValueError as exc:  # the frame differs from the first in format or layout
        raise CorruptAudio(
            f"the stream changes its sample format or channel layout mid-file ({exc}); "
            "re-encode it with one format throughout"
        ) from exc
    return [_packed_to_float32(packed) for packed in converted]


def _packed_to_float32(frame: av.AudioFrame) -> np.ndarray:
    """A packed ``flt`` frame (one plane, channels interleaved) as ``(channels, samples)``."""
    interleaved = frame.to_ndarray().reshape(-1, frame.layout.nb_channels)
    return np.ascontiguousarray(interleaved.T, dtype=np.float32)


def _check_complete(
    decoded_s: float, declared_duration_s: float | None, sniffed: SniffedFormat
) -> None:
    if declared_duration_s is None or decoded_s >= _MIN_DECODED_SHARE * declared_duration_s:
        return
    raise CorruptAudio(
        f"the {sniffed.container.upper()} file declares {declared_duration_s:.2f} s but only "
        f"{decoded_s:.2f} s could be decoded: it is damaged or truncated; {_FIX_HINT}"
    )


def _ffmpeg_message(sniffed: SniffedFormat, exc: av.error.FFmpegError) -> str:
    reason = str(exc.strerror or exc).rstrip(".")
    return f"the {sniffed.container.upper()} file could not be decoded ({reason}); {_FIX_HINT}"
