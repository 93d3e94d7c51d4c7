"""The hostile-input corpus: generated bad uploads, and the one table of what each must get.

:data:`EXPECTED` is the only place an outcome is declared: case name -> the HTTP status and
stable error ``code`` (``service/errors.py``) that ``POST /predict`` and ``POST /explain`` must
answer, or ``200`` for a correct result. :func:`build_corpus` makes the request of every case
from real encoders (``tests/audio_factory.py``) and one real RAVDESS speech clip.

For ``POST /jobs`` a case whose request is one ``file`` part is a *file* of a job: the job is
accepted and that file's outcome carries the same status and code (``docs/jobs.md``). Any other
request shape is a *submission* case: the submission itself is answered with the same status and
code, unless the row's ``jobs`` says otherwise (several files are what ``/jobs`` is for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx
import numpy as np

from service.audio.prepare import resample
from tests.audio_factory import (
    FORMATS,
    NON_AUDIO,
    corrupt_payload,
    encode_soundfile,
    flac_with_unknown_length,
    jpeg_bytes,
    png_bytes,
    silent_flac,
    silent_pyav,
    silent_soundfile,
    truncate,
    wav_with_declared_sizes,
    wav_with_header_field,
    white_noise,
)

# --- the expectations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """An HTTP status and, for a problem document, its ``code`` (``None``: a correct result)."""

    status: int
    code: str | None = None


@dataclass(frozen=True)
class Expect(Outcome):
    """A row of :data:`EXPECTED`; ``jobs`` overrides the outcome of a ``/jobs`` submission."""

    jobs: Outcome | None = None


OK: Final = Expect(200)
ACCEPTED: Final = Outcome(202)
"""A ``/jobs`` submission taken: its files are analysed one by one."""
HEADER_BYTES: Final = 16
"""Truncation inside the header: the first 16 bytes of a file."""
PER_FORMAT: Final = (
    "wav_pcm_16",
    "wav_float",
    "flac",
    "ogg_vorbis",
    "ogg_opus",
    "mp3",
    "m4a_aac",
    "adts_aac",
    "webm_opus",
    "webm_vorbis",
)
"""Every supported container/codec family, each valid, cut in its header, cut to a third and
with its last three quarters overwritten by random bytes."""


def _per_format(
    truncated_header: Expect, truncated: Expect, corrupted: Expect
) -> dict[str, Expect]:
    return {
        "valid": OK,
        "truncated_header": truncated_header,
        "truncated_third": truncated,
        "corrupted": corrupted,
    }


_CORRUPT: Final = Expect(422, "corrupt_audio")
_PER_FORMAT_EXPECTED: Final[dict[str, dict[str, Expect]]] = {
    # PCM bytes are never invalid: a cut WAV is a shorter WAV, random bytes are loud noise.
    "wav_pcm_16": _per_format(_CORRUPT, OK, OK),
    # Random bytes read as float32 hold NaN and infinite values.
    "wav_float": _per_format(_CORRUPT, OK, Expect(422, "invalid_samples")),
    "flac": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
    "ogg_vorbis": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
    "ogg_opus": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
    # MP3 states no exact length: a cut file is a shorter file.
    "mp3": _per_format(_CORRUPT, OK, _CORRUPT),
    "m4a_aac": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
    "adts_aac": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
    "webm_opus": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
    "webm_vorbis": _per_format(_CORRUPT, _CORRUPT, _CORRUPT),
}

EXPECTED: Final[dict[str, Expect]] = {
    # empty and tiny
    "empty_file": Expect(422, "empty_audio"),
    "wav_header_without_samples": Expect(422, "empty_audio"),
    "wav_one_sample": Expect(422, "audio_too_short"),
    "flac_one_sample": Expect(422, "audio_too_short"),
    "wav_100_ms": Expect(422, "audio_too_short"),
    # every format: valid, truncated, corrupted
    **{
        f"{name}/{variant}": expect
        for name, variants in _PER_FORMAT_EXPECTED.items()
        for variant, expect in variants.items()
    },
    # not audio, or named as something else
    "png_image": Expect(415, "not_audio"),
    "jpeg_image": Expect(415, "not_audio"),
    "png_named_wav": Expect(415, "not_audio"),
    "plain_text_named_wav": Expect(415, "not_audio"),
    "json_text": Expect(415, "not_audio"),
    "html_page": Expect(415, "not_audio"),
    "pdf_document": Expect(415, "not_audio"),
    "zip_archive": Expect(415, "not_audio"),
    "random_binary": Expect(415, "unsupported_format"),
    "aiff_audio": Expect(415, "unsupported_format"),
    "wav_named_mp3": OK,
    "wav_sent_as_image_png": OK,
    "flac_named_txt_without_type": OK,
    # WAV headers that lie
    "wav_data_size_4_gib": OK,
    "wav_riff_size_zero": OK,
    "wav_data_size_zero": Expect(422, "empty_audio"),
    "wav_zero_channels": _CORRUPT,
    # libsndfile refuses more than 1024 channels (SF_MAX_CHANNELS) as a broken header; the
    # header contradicts itself anyway (block align 2 bytes for 65535 channels).
    "wav_65535_channels": _CORRUPT,
    "wav_zero_rate": _CORRUPT,
    "wav_rate_1_hz": Expect(422, "sampling_rate_too_low"),
    "wav_rate_4_ghz": _CORRUPT,  # 0xFFFFFFFF: negative as libsndfile's signed rate
    "wav_rate_1_mhz": Expect(415, "unsupported_format"),  # above the 384 kHz bound
    "wav_zero_bits_per_sample": _CORRUPT,
    "wav_unknown_format_tag": Expect(415, "unsupported_format"),
    # sample values
    "wav_float_nan": Expect(422, "invalid_samples"),
    "wav_float_inf": Expect(422, "invalid_samples"),
    "wav_double_minus_inf": Expect(422, "invalid_samples"),
    "wav_float_out_of_range_100": OK,
    "silence": Expect(422, "no_speech"),
    "dc_only": Expect(422, "no_speech"),
    "speech_with_dc_offset": OK,
    "speech_clipped_full_scale": OK,
    # A 200 Hz full-scale buzz is voiced to the WebRTC speech detector: analysed, not refused.
    "full_scale_square_wave": OK,
    "white_noise": OK,
    # rates and channels
    "telephone_8k_ulaw": OK,
    "telephone_8k_pcm": OK,
    "wav_96k_8_channels": OK,
    "flac_96k_8_channels": OK,
    # Planar decoders (AAC, Opus) at 8 channels and more once crashed the process (CHANGELOG).
    "m4a_aac_8_channels": OK,
    "webm_opus_12_channels": OK,
    "wav_4k": Expect(422, "sampling_rate_too_low"),
    "wav_40_channels": Expect(422, "too_many_channels"),
    # long audio and decompression bombs (the test servers allow 120 s)
    "flac_hour_of_silence": Expect(413, "audio_too_long"),
    "flac_hour_unknown_length": Expect(413, "audio_too_long"),
    "ogg_vorbis_10_min_silence": Expect(413, "audio_too_long"),
    "ogg_opus_10_min_silence": Expect(413, "audio_too_long"),
    "webm_opus_10_min_silence": Expect(413, "audio_too_long"),
    "mp3_10_min_silence": Expect(413, "audio_too_long"),
    "wav_130_s": Expect(413, "audio_too_long"),
    # the form
    "two_files": Expect(422, "unexpected_field", jobs=ACCEPTED),
    "five_files": Expect(400, "invalid_form", jobs=ACCEPTED),
    "no_parts": Expect(422, "missing_field"),
    "file_as_text_field": Expect(422, "missing_field"),
    "wrong_field_name": Expect(422, "unexpected_field"),
    "file_and_extra_field": Expect(422, "unexpected_field"),
    "huge_text_field": Expect(400, "invalid_form"),
    "huge_file_field_as_text": Expect(400, "invalid_form"),
    "huge_filename": Expect(400, "invalid_form"),  # a 100 kB part header
    "twenty_fields": Expect(400, "invalid_form"),
    "multipart_without_boundary": Expect(400, "invalid_form"),
    # The parser drops the unfinished part, so the form it returns has no file.
    "multipart_cut_short": Expect(422, "missing_field"),
    # the body
    "json_body": Expect(415, "wrong_content_type"),
    "raw_wav_body": Expect(415, "wrong_content_type"),
    "urlencoded_body": Expect(415, "wrong_content_type"),
    "body_over_every_limit": Expect(413, "payload_too_large"),
}
"""Case name -> what ``/predict`` and ``/explain`` answer (and ``/jobs``, see the module doc)."""


# --- the requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One multipart part; ``filename=None`` makes it a text field."""

    data: bytes
    filename: str | None = "upload.bin"
    content_type: str = "application/octet-stream"
    field: str = "file"


@dataclass(frozen=True)
class HostileRequest:
    """A multipart form of ``parts``, or ``raw_body`` sent as is with ``headers``."""

    parts: tuple[Part, ...] = ()
    raw_body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def single_file(self) -> Part | None:
        """The part when the request is exactly one ``file`` file part (a file of a job)."""
        if self.raw_body is not None or len(self.parts) != 1:
            return None
        part = self.parts[0]
        return part if part.field == "file" and part.filename is not None else None

    def send(self, client: httpx.Client, path: str) -> httpx.Response:
        """POST this request to ``path``."""
        if self.raw_body is not None:
            return client.post(path, content=self.raw_body, headers=dict(self.headers))
        files = [(p.field, (p.filename, p.data, p.content_type)) for p in self.parts]
        return client.post(path, files=files, headers=dict(self.headers))


def upload(data: bytes, filename: str = "upload.bin", content_type: str = "") -> HostileRequest:
    """One ``file`` part."""
    return HostileRequest((Part(data, filename, content_type or "application/octet-stream"),))


def raw(body: bytes, content_type: str) -> HostileRequest:
    """A body sent with ``Content-Type: content_type`` and nothing else."""
    return HostileRequest(raw_body=body, headers={"content-type": content_type})


@dataclass(frozen=True)
class Speech:
    """A real speech clip, mono float32 ``(samples,)`` at ``sampling_rate_hz``."""

    samples: np.ndarray
    sampling_rate_hz: int

    def at(self, rate_hz: int, channels: int = 1) -> np.ndarray:
        """The clip as ``(channels, samples)`` at ``rate_hz`` (each channel a copy)."""
        mono = resample(self.samples, self.sampling_rate_hz, rate_hz)
        return np.tile(mono, (channels, 1))

    def wav(self, rate_hz: int = 16000, subtype: str = "PCM_16") -> bytes:
        return encode_soundfile(self.at(rate_hz), rate_hz, "WAV", subtype)


def _empty_and_tiny(speech: Speech) -> dict[str, HostileRequest]:
    one_sample = np.full((1, 1), 0.5, dtype=np.float32)
    return {
        "empty_file": upload(b"", "empty.wav"),
        "wav_header_without_samples": upload(speech.wav()[:44]),
        "wav_one_sample": upload(encode_soundfile(one_sample, 16000, "WAV", "PCM_16")),
        "flac_one_sample": upload(encode_soundfile(one_sample, 16000, "FLAC", "PCM_16")),
        "wav_100_ms": upload(encode_soundfile(speech.at(16000)[:, :1600], 16000, "WAV", "PCM_16")),
    }


def _each_format(speech: Speech) -> dict[str, HostileRequest]:
    cases: dict[str, HostileRequest] = {}
    for name in PER_FORMAT:
        fmt = FORMATS[name]
        data = fmt.encode(speech.at(16000, fmt.channel_counts[0]), 16000)
        cases[f"{name}/valid"] = upload(data, f"speech.{name}")
        cases[f"{name}/truncated_header"] = upload(truncate(data, HEADER_BYTES))
        cases[f"{name}/truncated_third"] = upload(truncate(data, len(data) // 3))
        cases[f"{name}/corrupted"] = upload(corrupt_payload(data, start=len(data) // 4))
    return cases


def _not_audio(speech: Speech) -> dict[str, HostileRequest]:
    random_bytes = np.random.default_rng(7).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    aiff = encode_soundfile(speech.at(16000), 16000, "AIFF", "PCM_16")
    flac = encode_soundfile(speech.at(16000), 16000, "FLAC", "PCM_16")
    return {
        "png_image": upload(png_bytes(), "picture.png", "image/png"),
        "jpeg_image": upload(jpeg_bytes(), "picture.jpg", "image/jpeg"),
        "png_named_wav": upload(png_bytes(), "speech.wav", "audio/wav"),
        "plain_text_named_wav": upload(NON_AUDIO["plain text"], "speech.wav", "audio/wav"),
        "json_text": upload(NON_AUDIO["JSON"], "speech.json", "application/json"),
        "html_page": upload(NON_AUDIO["HTML"], "index.html", "text/html"),
        "pdf_document": upload(NON_AUDIO["PDF"], "paper.pdf", "application/pdf"),
        "zip_archive": upload(NON_AUDIO["ZIP"], "speech.zip", "application/zip"),
        "random_binary": upload(random_bytes, "speech.wav", "audio/wav"),
        "aiff_audio": upload(aiff, "speech.aiff", "audio/aiff"),
        "wav_named_mp3": upload(speech.wav(), "speech.mp3", "audio/mpeg"),
        "wav_sent_as_image_png": upload(speech.wav(), "picture.png", "image/png"),
        "flac_named_txt_without_type": upload(flac, "notes.txt"),
    }


def _lying_wav_headers(speech: Speech) -> dict[str, HostileRequest]:
    wav = speech.wav()
    fields = {  # canonical 44-byte header offsets (RIFF spec): 20 tag, 22 channels, 24 rate
        "wav_zero_channels": (22, 0, "<H"),
        "wav_65535_channels": (22, 0xFFFF, "<H"),
        "wav_zero_rate": (24, 0, "<I"),
        "wav_rate_1_hz": (24, 1, "<I"),
        "wav_rate_4_ghz": (24, 0xFFFFFFFF, "<I"),
        "wav_rate_1_mhz": (24, 1_000_000, "<I"),
        "wav_zero_bits_per_sample": (34, 0, "<H"),
        "wav_unknown_format_tag": (20, 0x1234, "<H"),
    }
    cases = {
        name: upload(wav_with_header_field(wav, offset, value, fmt))
        for name, (offset, value, fmt) in fields.items()
    }
    cases["wav_data_size_4_gib"] = upload(wav_with_declared_sizes(wav, 0xFFFFFFFF))
    cases["wav_riff_size_zero"] = upload(wav_with_declared_sizes(wav, len(wav) - 44, riff_bytes=0))
    cases["wav_data_size_zero"] = upload(wav_with_declared_sizes(wav, 0))
    return cases


def _float_wav(signal: np.ndarray, subtype: str = "FLOAT") -> HostileRequest:
    return upload(encode_soundfile(signal, 16000, "WAV", subtype))


def _with_values(speech: Speech, value: float) -> np.ndarray:
    signal = speech.at(16000)
    signal[0, 1000:1010] = value
    return signal


def _sample_values(speech: Speech) -> dict[str, HostileRequest]:
    two_s = 32000
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(two_s) / 16000)).astype(np.float32)
    clipped = np.clip(speech.at(16000) * 20.0, -1.0, 1.0)
    return {
        "wav_float_nan": _float_wav(_with_values(speech, float("nan"))),
        "wav_float_inf": _float_wav(_with_values(speech, float("inf"))),
        "wav_double_minus_inf": _float_wav(_with_values(speech, float("-inf")), "DOUBLE"),
        "wav_float_out_of_range_100": _float_wav(speech.at(16000) * 100.0),
        "silence": _float_wav(np.zeros((1, two_s), dtype=np.float32), "PCM_16"),
        "dc_only": _float_wav(np.full((1, two_s), 0.5, dtype=np.float32), "PCM_16"),
        "speech_with_dc_offset": _float_wav(speech.at(16000) * 0.5 + 0.4, "PCM_16"),
        "speech_clipped_full_scale": _float_wav(clipped, "PCM_16"),
        "full_scale_square_wave": _float_wav(square[np.newaxis, :], "PCM_16"),
        "white_noise": _float_wav(white_noise(two_s, 0.1, seed=3)[np.newaxis, :], "PCM_16"),
    }


def _rates_and_channels(speech: Speech) -> dict[str, HostileRequest]:
    low_rate = np.zeros((1, 16000), dtype=np.float32)
    return {
        "telephone_8k_ulaw": upload(encode_soundfile(speech.at(8000), 8000, "WAV", "ULAW")),
        "telephone_8k_pcm": upload(encode_soundfile(speech.at(8000), 8000, "WAV", "PCM_16")),
        "wav_96k_8_channels": upload(encode_soundfile(speech.at(96000, 8), 96000, "WAV", "PCM_16")),
        "flac_96k_8_channels": upload(
            encode_soundfile(speech.at(96000, 8), 96000, "FLAC", "PCM_16")
        ),
        "m4a_aac_8_channels": upload(FORMATS["m4a_aac"].encode(speech.at(48000, 8), 48000)),
        "webm_opus_12_channels": upload(FORMATS["webm_opus"].encode(speech.at(48000, 12), 48000)),
        "wav_4k": upload(encode_soundfile(low_rate, 4000, "WAV", "PCM_16")),
        "wav_40_channels": upload(encode_soundfile(speech.at(8000, 40), 8000, "WAV", "PCM_16")),
    }


def _long_and_bombs() -> dict[str, HostileRequest]:
    hour_s, ten_min_s = 3600.0, 600.0
    hour_flac = silent_flac(hour_s, rate_hz=8000)
    return {
        "flac_hour_of_silence": upload(hour_flac),
        "flac_hour_unknown_length": upload(flac_with_unknown_length(hour_flac)),
        "ogg_vorbis_10_min_silence": upload(silent_soundfile(ten_min_s, 8000, "OGG", "VORBIS")),
        "ogg_opus_10_min_silence": upload(silent_pyav(ten_min_s, 8000, "ogg", "libopus")),
        "webm_opus_10_min_silence": upload(silent_pyav(ten_min_s, 8000, "webm", "libopus")),
        "mp3_10_min_silence": upload(silent_pyav(ten_min_s, 8000, "mp3", "libmp3lame")),
        "wav_130_s": upload(silent_soundfile(130.0, 8000, "WAV", "PCM_16", block_s=10.0)),
    }


def _text(name: str, value: bytes) -> Part:
    return Part(value, None, "text/plain", name)


def _form(speech: Speech) -> dict[str, HostileRequest]:
    wav = Part(speech.wav(), "speech.wav", "audio/wav")
    huge_bytes = 1024 * 1024  # 16 times SER_MAX_FORM_FIELD_BYTES' default
    return {
        "two_files": HostileRequest((wav, wav)),
        "five_files": HostileRequest((wav,) * 5),
        "no_parts": raw(b"--b--\r\n", "multipart/form-data; boundary=b"),
        "file_as_text_field": HostileRequest((_text("file", b"speech.wav"),)),
        "wrong_field_name": HostileRequest((Part(wav.data, "speech.wav", field="audio"),)),
        "file_and_extra_field": HostileRequest((wav, _text("model", b"tiny"))),
        "huge_text_field": HostileRequest((wav, _text("comment", b"x" * huge_bytes))),
        "huge_file_field_as_text": HostileRequest((_text("file", b"x" * huge_bytes),)),
        "huge_filename": raw(_multipart(wav.data, "a" * 100_000 + ".wav"), _CUT_MULTIPART),
        "twenty_fields": HostileRequest((wav, *(_text(f"f{n}", b"1") for n in range(20)))),
        "multipart_without_boundary": raw(_multipart(wav.data), "multipart/form-data"),
        "multipart_cut_short": raw(_multipart(wav.data)[:200], _CUT_MULTIPART),
    }


_CUT_MULTIPART: Final = "multipart/form-data; boundary=cut"


def _multipart(data: bytes, filename: str = "speech.wav") -> bytes:
    """A one-file form written by hand (boundary ``cut``), for bodies httpx would not send."""
    head = (
        "--cut\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    )
    return head.encode() + data + b"\r\n--cut--\r\n"


def _bodies(speech: Speech) -> dict[str, HostileRequest]:
    over_every_limit = 40 * 1024 * 1024  # the test servers allow 8 MiB (/predict), 32 MiB (/jobs)
    return {
        "json_body": raw(b'{"file": "speech.wav"}', "application/json"),
        "raw_wav_body": raw(speech.wav(), "audio/wav"),
        "urlencoded_body": raw(b"file=speech.wav", "application/x-www-form-urlencoded"),
        "body_over_every_limit": raw(_multipart(b"\0" * over_every_limit), _CUT_MULTIPART),
    }


GROUPS: Final[dict[str, Callable[[Speech], dict[str, HostileRequest]]]] = {
    "empty and tiny": _empty_and_tiny,
    "each format: valid, header cut, cut to a third, corrupted": _each_format,
    "not audio, wrong name or type": _not_audio,
    "WAV headers that lie": _lying_wav_headers,
    "sample values": _sample_values,
    "rates and channels": _rates_and_channels,
    "long audio and decompression bombs": lambda _: _long_and_bombs(),
    "the form": _form,
    "the body": _bodies,
}
"""Group name -> builder of its cases (``docs/reliability.md`` counts cases per group)."""


def build_corpus(speech: Speech) -> dict[str, HostileRequest]:
    """Every case of :data:`EXPECTED`, built from ``speech``."""
    corpus: dict[str, HostileRequest] = {}
    for build in GROUPS.values():
        corpus.update(build(speech))
    return corpus
