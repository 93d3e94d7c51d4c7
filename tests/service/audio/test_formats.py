"""Container sniffing: every supported format is recognised, everything else refused by name."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.audio.decode import DecodeLimits, decode_audio
from service.audio.formats import sniff_format
from service.errors import CorruptAudio, EmptyAudio, NotAudio, ServiceError, UnsupportedFormat
from tests.audio_factory import (
    FORMATS,
    NON_AUDIO,
    encode_soundfile,
    tone_signal,
    wav_with_header_field,
)

RATE_HZ = 16000


@pytest.fixture(scope="module")
def encoded() -> dict[str, bytes]:
    """0.2 s of a test tone in every format (with the smallest channel count it takes)."""
    result = {}
    for name, fmt in FORMATS.items():
        channels = fmt.channel_counts[0]
        result[name] = fmt.encode(tone_signal(0.2, RATE_HZ, channels), RATE_HZ)
    return result


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_supported_format_is_sniffed(encoded: dict[str, bytes], name: str) -> None:
    sniffed = sniff_format(encoded[name])
    assert sniffed.container == FORMATS[name].container
    expected_backend = (
        "soundfile" if name.startswith(("wav", "rf64", "flac", "ogg_vorbis")) else "pyav"
    )
    assert sniffed.backend == expected_backend


def test_wav_codec_comes_from_the_fmt_chunk(encoded: dict[str, bytes]) -> None:
    assert sniff_format(encoded["wav_float"]).codec == "float"
    assert sniff_format(encoded["wavex_pcm_16"]).codec == "pcm"  # extensible -> subformat
    assert sniff_format(encoded["ogg_opus"]).codec == "opus"
    assert sniff_format(encoded["ogg_vorbis"]).codec == "vorbis"


@pytest.mark.parametrize("kind", sorted(NON_AUDIO))
def test_non_audio_is_named(kind: str) -> None:
    with pytest.raises(NotAudio, match=kind.split()[0]):
        decode_audio(NON_AUDIO[kind], DecodeLimits(max_duration_s=10))


def test_utf16_text_is_not_read_as_mpeg_audio() -> None:
    text = "Kids are talking by the door".encode("utf-16")  # BOM FF FE = an MPEG sync pattern
    with pytest.raises(NotAudio, match="plain text"):
        sniff_format(text)


def test_empty_upload() -> None:
    with pytest.raises(EmptyAudio, match="no bytes"):
        decode_audio(b"", DecodeLimits(max_duration_s=10))


def test_unknown_binary_lists_supported_formats() -> None:
    noise = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(UnsupportedFormat, match=r"first bytes .*FLAC.*MP3.*WebM"):
        sniff_format(b"\x00\x01" + noise)


def test_known_but_unsupported_audio_is_named() -> None:
    aiff = encode_soundfile(tone_signal(0.1, RATE_HZ), RATE_HZ, "AIFF", "PCM_16")
    with pytest.raises(UnsupportedFormat, match="AIFF files are not supported"):
        sniff_format(aiff)


def test_wav_with_mp3_payload_is_unsupported(encoded: dict[str, bytes]) -> None:
    mp3_in_wav = wav_with_header_field(encoded["wav_pcm_16"], 20, 0x0055)  # WAVE_FORMAT_MPEGLAYER3
    with pytest.raises(UnsupportedFormat, match="format tag 0x0055"):
        sniff_format(mp3_in_wav)


def test_riff_header_cut_short() -> None:
    with pytest.raises(CorruptAudio, match="ends after 6 bytes"):
        sniff_format(b"RIFF\x24\x00")


def test_ogg_speex_is_unsupported() -> None:
    page = b"OggS\x00\x02" + bytes(20) + b"\x01\x50" + b"Speex   1.2" + bytes(69)
    with pytest.raises(UnsupportedFormat, match="Ogg Speex"):
        sniff_format(page)


def test_heif_image_in_iso_container() -> None:
    heic = struct.pack(">I", 24) + b"ftypheic" + bytes(4) + b"mif1heic"
    with pytest.raises(NotAudio, match="HEIF"):
        sniff_format(heic)


def test_flac_behind_an_id3_tag_decodes(encoded: dict[str, bytes]) -> None:
    tag_body = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00\x03clip"
    id3 = b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(tag_body)]) + tag_body  # syncsafe size
    data = id3 + encoded["flac"]
    sniffed = sniff_format(data)
    assert (sniffed.container, sniffed.payload_offset) == ("flac", len(id3))
    decoded = decode_audio(data, DecodeLimits(max_duration_s=10))
    assert decoded.signal.shape == (1, round(0.2 * RATE_HZ))


AUDIO_MAGIC = [
    b"",
    b"RIFF\x00\x01\x00\x00WAVEfmt ",
    b"RF64\xff\xff\xff\xffWAVEds64",
    b"fLaC\x00\x00\x00\x22",
    b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead",
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm",
    b"\xff\xfb\x90\x64",
    b"\xff\xf1\x50\x80",
    b"\x00\x00\x00\x18ftypM4A ",
]


@settings(max_examples=300, deadline=None)
@given(magic=st.sampled_from(AUDIO_MAGIC), tail=st.binary(max_size=256))
def test_arbitrary_bytes_only_raise_service_errors(magic: bytes, tail: bytes) -> None:
    """Random bytes, bare or behind a real audio signature, never escape as other errors."""
    try:
        decoded = decode_audio(magic + tail, DecodeLimits(max_duration_s=10))
    except ServiceError:
        return
    assert decoded.signal.ndim == 2
