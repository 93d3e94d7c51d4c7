"""Test audio in every format the service accepts, made with the real encoders, plus hostile inputs.

Encoders: soundfile (libsndfile) for WAV/RF64/FLAC/Ogg Vorbis, PyAV (FFmpeg) for Ogg Opus,
MP3 (libmp3lame), M4A and ADTS (FFmpeg's native AAC) and WebM (libopus, FFmpeg's native Vorbis).
Signals are float32 ``(channels, samples)`` in [-1, 1], as everywhere in the service.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile
import soxr
from PIL import Image

OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)  # RFC 6716 section 2 (Opus input rates)
OPUS_OUTPUT_RATE_HZ = 48000  # RFC 7845 section 5.1: decoders output 48 kHz
OPUS_VORBIS_LAYOUTS = ("mono", "stereo", "5.1")  # RFC 7845 5.1.1.2: family 1, Vorbis order
MP3_RATES_HZ = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MPEG-1/2/2.5
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "octagonal"}  # FFmpeg layout names


@dataclass(frozen=True)
class AudioFormat:
    """One way of writing audio: how to encode it and what the decoder should report."""

    name: str
    encode: Callable[[np.ndarray, int], bytes]
    container: str
    codec: str
    lossless: bool
    channel_counts: tuple[int, ...]
    """Channel counts the encoder takes among the tested 1, 2 and 6."""
    tolerance_s: float
    """Allowed decoded-duration error: one codec frame (at the lowest rate tested, 8 kHz)."""


# --- soundfile encoders -----------------------------------------------------------------------


def encode_soundfile(signal: np.ndarray, rate_hz: int, file_format: str, subtype: str) -> bytes:
    """``signal`` ``(channels, samples)`` written by libsndfile (e.g. ``"WAV", "PCM_24"``)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, signal.T, rate_hz, format=file_format, subtype=subtype)
    return buffer.getvalue()


def _soundfile_encoder(file_format: str, subtype: str) -> Callable[[np.ndarray, int], bytes]:
    return lambda signal, rate_hz: encode_soundfile(signal, rate_hz, file_format, subtype)


# --- PyAV encoders ----------------------------------------------------------------------------


def encode_pyav(
    signal: np.ndarray, rate_hz: int, muxer: str, codec: str, options: dict[str, str] | None = None
) -> bytes:
    """``signal`` ``(channels, samples)`` encoded by FFmpeg's ``codec`` into ``muxer``.

    The frame is packed (interleaved) float: PyAV 18 builds a planar frame of 8 or more
    channels wrongly (see ``service/audio/decode.py``); the encoder converts it to its own format.
    """
    channels = signal.shape[0]
    layout = _LAYOUTS.get(channels, f"{channels}c")  # FFmpeg: "12c" is 12 unnamed channels
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as output:
        stream = output.add_stream(codec, rate=rate_hz, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if options:
            stream.codec_context.options = options
        interleaved = np.ascontiguousarray(signal.T, dtype=np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
        frame.rate, frame.pts, frame.time_base = rate_hz, 0, Fraction(1, rate_hz)
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def encode_opus(signal: np.ndarray, rate_hz: int, muxer: str = "ogg") -> bytes:
    """Opus only codes 8/12/16/24/48 kHz: other rates are resampled to 48 kHz first."""
    if rate_hz not in OPUS_RATES_HZ:
        signal = soxr.resample(signal.T, rate_hz, OPUS_OUTPUT_RATE_HZ).T
        rate_hz = OPUS_OUTPUT_RATE_HZ
    # RFC 7845 section 5.1.1.2: mapping family 255 carries any number of unnamed channels.
    layout = _LAYOUTS.get(signal.shape[0])
    options = None if layout in OPUS_VORBIS_LAYOUTS else {"mapping_family": "255"}
    return encode_pyav(signal, rate_hz, muxer, "libopus", options)


def _pyav_encoder(
    muxer: str, codec: str, options: dict[str, str] | None = None
) -> Callable[[np.ndarray, int], bytes]:
    return lambda signal, rate_hz: encode_pyav(signal, rate_hz, muxer, codec, options)


_VORBIS_EXPERIMENTAL = {"strict": "experimental"}  # FFmpeg's native Vorbis encoder needs it
ALL, UP_TO_STEREO, STEREO_ONLY = (1, 2, 6), (1, 2), (2,)  # FFmpeg's Vorbis encoder: stereo only
OPUS_FRAME_S = 0.020  # RFC 6716 section 2.1.4: 20 ms is the default frame
MP3_FRAME_S = 1152 / 8000  # ISO/IEC 11172-3: 1152 samples per Layer III frame, at 8 kHz
AAC_FRAME_S = 1024 / 8000  # ISO/IEC 14496-3: 1024 samples per AAC-LC frame, at 8 kHz
VORBIS_BLOCK_S = 2048 / 8000  # Vorbis I spec 1.3.2: long blocks up to 2048 samples (FFmpeg's)


def _wav(name: str, file_format: str, subtype: str, container: str, codec: str) -> AudioFormat:
    return AudioFormat(
        name, _soundfile_encoder(file_format, subtype), container, codec, True, ALL, 0.0
    )


FORMATS: dict[str, AudioFormat] = {
    fmt.name: fmt
    for fmt in (
        _wav("wav_pcm_u8", "WAV", "PCM_U8", "wav", "pcm_u8"),
        _wav("wav_pcm_16", "WAV", "PCM_16", "wav", "pcm_s16"),
        _wav("wav_pcm_24", "WAV", "PCM_24", "wav", "pcm_s24"),
        _wav("wav_pcm_32", "WAV", "PCM_32", "wav", "pcm_s32"),
        _wav("wav_float", "WAV", "FLOAT", "wav", "pcm_f32"),
        _wav("wav_double", "WAV", "DOUBLE", "wav", "pcm_f64"),
        _wav("wavex_pcm_16", "WAVEX", "PCM_16", "wav", "pcm_s16"),  # WAVE_FORMAT_EXTENSIBLE
        _wav("rf64_pcm_16", "RF64", "PCM_16", "rf64", "pcm_s16"),
        # G.711 companding: 8-bit logarithmic, lossy (about 38 dB SNR, ITU-T G.711).
        AudioFormat("wav_ulaw", _soundfile_encoder("WAV", "ULAW"), "wav", "ulaw", False, ALL, 0.0),
        AudioFormat("wav_alaw", _soundfile_encoder("WAV", "ALAW"), "wav", "alaw", False, ALL, 0.0),
        _wav("flac", "FLAC", "PCM_16", "flac", "flac"),
        AudioFormat("ogg_flac", _pyav_encoder("ogg", "flac"), "ogg", "flac", True, ALL, 0.0),
        # Vorbis in Ogg: exact length from the last granule position (Vorbis I spec A.2).
        AudioFormat(
            "ogg_vorbis", _soundfile_encoder("OGG", "VORBIS"), "ogg", "vorbis", False, ALL, 0.001
        ),
        AudioFormat("ogg_opus", encode_opus, "ogg", "opus", False, UP_TO_STEREO, OPUS_FRAME_S),
        AudioFormat(
            "webm_opus",
            lambda s, r: encode_opus(s, r, "webm"),
            "webm",
            "opus",
            False,
            UP_TO_STEREO,
            OPUS_FRAME_S,
        ),
        AudioFormat(
            "webm_vorbis",
            _pyav_encoder("webm", "vorbis", _VORBIS_EXPERIMENTAL),
            "webm",
            "vorbis",
            False,
            STEREO_ONLY,
            VORBIS_BLOCK_S,
        ),
        AudioFormat(
            "mp3",
            _pyav_encoder("mp3", "libmp3lame"),
            "mp3",
            "mp3",
            False,
            UP_TO_STEREO,
            MP3_FRAME_S,
        ),
        AudioFormat("m4a_aac", _pyav_encoder("ipod", "aac"), "mp4", "aac", False, ALL, AAC_FRAME_S),
        # ADTS has no edit list, so the priming frame stays in: two frames of slack.
        AudioFormat(
            "adts_aac", _pyav_encoder("adts", "aac"), "adts", "aac", False, ALL, 2 * AAC_FRAME_S
        ),
    )
}
"""Every format by name."""


# --- signals ----------------------------------------------------------------------------------


def tone_signal(duration_s: float, rate_hz: int, channels: int = 1) -> np.ndarray:
    """A different pair of tones per channel (200 Hz + k * 110 Hz, 0.25 amplitude each)."""
    time_s = np.arange(round(duration_s * rate_hz)) / rate_hz
    rows = [
        0.25 * np.sin(2 * np.pi * (200 + 110 * k) * time_s)
        + 0.25 * np.sin(2 * np.pi * (1000 + 370 * k) * time_s)
        for k in range(channels)
    ]
    return np.asarray(rows, dtype=np.float32).reshape(channels, -1)


def load_clip(path: Path) -> tuple[np.ndarray, int]:
    """A corpus file as float32 ``(channels, samples)`` and its sampling rate."""
    samples, rate_hz = soundfile.read(path, dtype="float32", always_2d=True)
    signal: np.ndarray = np.ascontiguousarray(samples.T)
    return signal, int(rate_hz)


def white_noise(samples: int, power: float, seed: int = 0) -> np.ndarray:
    """Gaussian white noise ``(samples,)`` float32 with mean power ``power``."""
    rng = np.random.default_rng(seed)
    return np.asarray(rng.standard_normal(samples) * np.sqrt(power), dtype=np.float32)


# --- hostile inputs ---------------------------------------------------------------------------


def truncate(data: bytes, keep_bytes: int) -> bytes:
    """The first ``keep_bytes`` bytes (a cut-off upload)."""
    return data[:keep_bytes]


def corrupt_payload(data: bytes, start: int, length: int | None = None, seed: int = 0) -> bytes:
    """Random bytes over ``data[start : start + length]`` (to the end when ``length`` is None)."""
    end = len(data) if length is None else min(len(data), start + length)
    noise = np.random.default_rng(seed).integers(0, 256, end - start, dtype=np.uint8)
    return data[:start] + noise.tobytes() + data[end:]


def wav_with_declared_sizes(data: bytes, data_bytes: int, riff_bytes: int | None = None) -> bytes:
    """A canonical 44-byte-header WAV whose ``data`` (and RIFF) chunk sizes are replaced."""
    if data[36:40] != b"data":
        raise ValueError("expects the canonical WAV layout: 'data' chunk at byte 36")
    riff = 0xFFFFFFFF if riff_bytes is None else riff_bytes
    return (
        data[:4] + struct.pack("<I", riff) + data[8:40] + struct.pack("<I", data_bytes) + data[44:]
    )


def wav_with_header_field(data: bytes, offset: int, value: int, fmt: str = "<H") -> bytes:
    """A canonical WAV with one ``fmt `` field overwritten (22 = channels, 24 = rate, 20 = tag)."""
    size = struct.calcsize(fmt)
    return data[:offset] + struct.pack(fmt, value) + data[offset + size :]


def flac_with_unknown_length(data: bytes) -> bytes:
    """FLAC whose STREAMINFO total-samples field is 0 ("unknown", as when streamed to a pipe).

    STREAMINFO starts at byte 8; sample rate (20 bits), channels (3), bits (5) and total
    samples (36) share the 8 bytes at offset 18 (FLAC format spec, METADATA_BLOCK_STREAMINFO).
    """
    packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)
    return data[:18] + packed.to_bytes(8, "big") + data[26:]


def silent_flac(duration_s: float, rate_hz: int = 8000, block_s: float = 60.0) -> bytes:
    """A long FLAC of digital silence: ~90 kB per hour at 8 kHz, a decompression bomb."""
    return silent_soundfile(duration_s, rate_hz, "FLAC", "PCM_16", block_s)


def silent_soundfile(
    duration_s: float, rate_hz: int, file_format: str, subtype: str, block_s: float = 60.0
) -> bytes:
    """``duration_s`` (whole ``block_s`` blocks) of mono digital silence written by libsndfile.

    Silence compresses to almost nothing in FLAC or Ogg Vorbis: a decompression bomb.
    """
    buffer = io.BytesIO()
    block = np.zeros(round(block_s * rate_hz), dtype=np.float32)
    with soundfile.SoundFile(buffer, "w", rate_hz, 1, format=file_format, subtype=subtype) as file:
        for _ in range(int(duration_s // block_s)):
            file.write(block)
    return buffer.getvalue()


def silent_pyav(
    duration_s: float, rate_hz: int, muxer: str, codec: str, block_s: float = 1.0
) -> bytes:
    """``duration_s`` (whole ``block_s`` blocks) of mono silence encoded by FFmpeg's ``codec``.

    Encoded block by block, so an hour never sits in memory: 10 minutes of 8 kHz silence take
    ~140 kB as Ogg Opus and ~600 kB as MP3 (measured with PyAV 18).
    """
    buffer = io.BytesIO()
    block_samples = round(block_s * rate_hz)
    zeros = np.zeros((1, block_samples), dtype=np.float32)
    with av.open(buffer, mode="w", format=muxer) as output:
        stream = output.add_stream(codec, rate=rate_hz, layout="mono")
        assert isinstance(stream, av.AudioStream)
        for index in range(int(duration_s // block_s)):
            frame = av.AudioFrame.from_ndarray(zeros, format="fltp", layout="mono")
            frame.rate, frame.pts = rate_hz, index * block_samples
            frame.time_base = Fraction(1, rate_hz)
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def float_wav_with(
    values: dict[int, float], rate_hz: int = 16000, duration_s: float = 1.0
) -> bytes:
    """A 32-bit float WAV of a test tone with ``values[index]`` written at those samples."""
    signal = tone_signal(duration_s, rate_hz)
    for index, value in values.items():
        signal[0, index] = value
    return encode_soundfile(signal, rate_hz, "WAV", "FLOAT")


def png_bytes() -> bytes:
    """A real 1x1 PNG (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(side_px: int = 8) -> bytes:
    """A real baseline JPEG of ``side_px`` x ``side_px`` grey pixels (Pillow, via matplotlib)."""
    buffer = io.BytesIO()
    Image.new("L", (side_px, side_px), color=128).save(buffer, format="JPEG")
    return buffer.getvalue()


def flip_bits(data: bytes, bit_indexes: list[int]) -> bytes:
    """``data`` with each bit at ``bit_indexes`` (counted from the first byte's LSB) inverted."""
    flipped = bytearray(data)
    for bit_index in bit_indexes:
        flipped[bit_index // 8] ^= 1 << (bit_index % 8)
    return bytes(flipped)


def splice(head: bytes, tail: bytes, head_bytes: int, tail_from: int) -> bytes:
    """The first ``head_bytes`` of ``head`` followed by ``tail`` from byte ``tail_from`` on."""
    return head[:head_bytes] + tail[tail_from:]


def zip_bytes() -> bytes:
    """A ZIP archive holding one text file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not audio")
    return buffer.getvalue()


NON_AUDIO: dict[str, bytes] = {
    "PNG": png_bytes(),
    "JPEG": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "GIF": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!",
    "PDF": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "ZIP": zip_bytes(),
    "plain text": "Kids are talking by the door. Übung: der Lappen liegt im Eisschrank.\n".encode(),
    "JSON": b'{"audio": "speech.wav", "label": "happy"}',
    "HTML": b"<!DOCTYPE html><html><body>413 Request Entity Too Large</body></html>",
    "base64": b"UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA=",
    "WebP": b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11",
}
"""Name -> bytes; the name is what ``NotAudio``'s message must mention."""
