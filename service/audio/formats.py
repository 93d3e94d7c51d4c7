"""Recognise an upload's container from its first bytes, before any decoder sees it.

Only what this module recognises is handed to a decoder, and always with the demuxer named
explicitly: FFmpeg never probes client bytes on its own (its probing also knows playlist and
concatenation formats that can open other files).

Signatures come from the format specifications cited beside each constant. Everything else
raises: ``EmptyAudio`` (no bytes), ``NotAudio`` (an image, a document, an archive, text),
``UnsupportedFormat`` (audio in a format the service does not decode, or unknown binary) or
``CorruptAudio`` (an audio header cut short).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

from service.errors import CorruptAudio, EmptyAudio, NotAudio, UnsupportedFormat

Backend = Literal["soundfile", "pyav"]

SUPPORTED_FORMATS: Final[str] = (
    "WAV (PCM 8/16/24/32-bit, float 32/64-bit, A-law, µ-law, ADPCM; RIFF, RF64), FLAC, "
    "OGG (Vorbis, Opus, FLAC), MP3, M4A/MP4 (AAC), AAC (ADTS), WebM/Matroska (Opus, Vorbis)"
)
"""Human-readable list used in every ``UnsupportedFormat`` message."""


@dataclass(frozen=True)
class SniffedFormat:
    """What the first bytes say.

    ``container`` is the service's name for it (``wav``, ``rf64``, ``flac``, ``ogg``, ``mp3``,
    ``adts``, ``mp4``, ``webm``, ``matroska``); ``codec`` is known for WAV (from the ``fmt ``
    chunk) and Ogg (from the first packet), else ``None`` until decoded. ``payload_offset`` skips
    an ID3v2 tag in front of a FLAC stream.
    """

    container: str
    codec: str | None
    backend: Backend
    payload_offset: int = 0


# --- WAV family: RIFF/RIFX (Microsoft RIFF spec 1991), RF64 (EBU Tech 3306), BW64 (ITU-R BS.2088)
_RIFF_IDS: Final[dict[bytes, str]] = {
    b"RIFF": "wav",
    b"RIFX": "wav",
    b"RF64": "rf64",
    b"BW64": "rf64",
}
_WAVE_FORMAT_EXTENSIBLE: Final[int] = 0xFFFE  # mmreg.h, WAVEFORMATEXTENSIBLE
_WAV_CODECS: Final[dict[int, str]] = {  # mmreg.h WAVE_FORMAT_* tags that libsndfile decodes
    0x0001: "pcm",
    0x0002: "ms_adpcm",
    0x0003: "float",
    0x0006: "alaw",
    0x0007: "ulaw",
    0x0011: "ima_adpcm",
    0x0031: "gsm610",
}
_WAV_MAX_CHUNKS_BEFORE_FMT: Final[int] = 32  # design bound: real files put 0-3 chunks first

# --- Ogg (RFC 3533 section 6): 27-byte page header, then the segment table, then the packet.
_OGG_FIRST_PACKETS: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x01vorbis", "vorbis"),  # Vorbis I spec section 4.2.1 (identification header)
    (b"OpusHead", "opus"),  # RFC 7845 section 5.1
    (b"\x7fFLAC", "flac"),  # FLAC-in-Ogg mapping (xiph.org/flac/ogg_mapping.html)
)
_OGG_UNSUPPORTED: Final[tuple[tuple[bytes, str], ...]] = (
    (b"Speex   ", "Ogg Speex"),  # Speex manual, Ogg mapping
    (b"\x80theora", "Ogg Theora video"),  # Theora spec section 6.2
)

# --- ISO BMFF (ISO/IEC 14496-12 section 4.3): 'ftyp' box at offset 4, major brand at 8.
_IMAGE_BRANDS: Final[frozenset[bytes]] = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}  # ISO/IEC 23008-12
)
_EBML_MAGIC: Final[bytes] = b"\x1a\x45\xdf\xa3"  # RFC 8794 section 8 (EBML header element ID)
_EBML_DOCTYPE_SCAN_BYTES: Final[int] = 64  # the DocType element sits in the first ~40 bytes

# --- MPEG audio frame header (ISO/IEC 11172-3 2.4.2.3) and ADTS (ISO/IEC 13818-7 6.2).
_ID3V2_HEADER_BYTES: Final[int] = 10  # id3.org ID3v2.4 structure, section 3.1
_ADTS_SAMPLING_INDEXES: Final[int] = 13  # ISO/IEC 14496-3 table 1.18: indexes 0..12 are rates

# --- Non-audio signatures (each format's own specification or registration).
_NON_AUDIO_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),  # PNG spec 5.2
    (b"\xff\xd8\xff", "a JPEG image"),  # ITU T.81 annex B (SOI marker + next marker)
    (b"GIF87a", "a GIF image"),  # GIF87a spec
    (b"GIF89a", "a GIF image"),  # GIF89a spec section 17
    (b"%PDF-", "a PDF document"),  # ISO 32000-1 section 7.5.2
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),  # PKWARE APPNOTE 4.3.7
    (b"PK\x05\x06", "an empty ZIP archive"),  # PKWARE APPNOTE 4.3.16
    (b"\x1f\x8b", "a gzip archive"),  # RFC 1952 section 2.3.1
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),  # 7-Zip 7zFormat.txt
    (b"Rar!\x1a\x07", "a RAR archive"),  # RARLAB technote
    (b"II*\x00", "a TIFF image"),  # TIFF 6.0 section 2
    (b"MM\x00*", "a TIFF image"),  # TIFF 6.0 section 2
    (b"\x7fELF", "an ELF executable"),  # System V ABI, e_ident
)
_RIFF_NON_AUDIO: Final[dict[bytes, str]] = {b"WEBP": "a WebP image", b"AVI ": "an AVI video"}

# --- Audio the service recognises but does not decode: UnsupportedFormat, named.
_UNSUPPORTED_AUDIO_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"FORM", "AIFF"),  # EA IFF 85 / Apple AIFF 1.3
    (b"caff", "Apple CAF"),  # Apple Core Audio Format spec
    (b".snd", "Sun/NeXT AU"),  # Sun AU header
    (b"#!AMR", "AMR"),  # RFC 4867 section 5
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "WMA/ASF"),  # ASF spec, header object GUID
    (b"MThd", "MIDI (a score, not a recording)"),  # Standard MIDI File 1.0
)

_TEXT_SCAN_BYTES: Final[int] = 512  # enough characters to tell text from binary
_UTF8_MAX_CHAR_BYTES: Final[int] = 4  # RFC 3629 section 3
_BASE64_AUDIO_PREFIXES: Final[tuple[str, ...]] = (
    "UklGR",  # base64("RIFF")
    "ZkxhQ",  # base64("fLaC")
    "T2dnU",  # base64("OggS")
    "SUQz",  # base64("ID3")
    "data:audio/",  # RFC 2397 data URI
)


def sniff_format(data: bytes) -> SniffedFormat:
    """Identify the container of ``data`` (the whole upload) from its first bytes.

    Raises:
        EmptyAudio: ``data`` is empty.
        CorruptAudio: an audio header is cut short.
        NotAudio: the bytes are a known non-audio format or text.
        UnsupportedFormat: audio in a format the service does not decode, or unknown binary.
    """
    if not data:
        raise EmptyAudio("the upload has no bytes; send the audio file in the 'file' field")
    sniffed = _sniff_audio(data)
    if sniffed is not None:
        return sniffed
    _raise_if_not_audio(data)
    for magic, name in _UNSUPPORTED_AUDIO_MAGIC:
        if data.startswith(magic):
            raise UnsupportedFormat(
                f"{name} files are not supported; convert to one of: {SUPPORTED_FORMATS}"
            )
    raise UnsupportedFormat(
        f"unrecognised file format (first bytes {data[:8].hex(' ')}); "
        f"supported formats: {SUPPORTED_FORMATS}"
    )


def _sniff_audio(data: bytes) -> SniffedFormat | None:
    if data[:4] in _RIFF_IDS:
        return _sniff_riff(data)
    if data.startswith(b"fLaC"):  # FLAC format spec, "Stream"
        return SniffedFormat("flac", "flac", "soundfile")
    if data.startswith(b"OggS"):  # RFC 3533 section 6
        return _sniff_ogg(data)
    if data.startswith(b"ID3"):
        return _sniff_after_id3(data)
    if data[4:8] == b"ftyp":
        return _sniff_iso_bmff(data)
    if data.startswith(_EBML_MAGIC):
        is_webm = b"webm" in data[:_EBML_DOCTYPE_SCAN_BYTES]
        return SniffedFormat("webm" if is_webm else "matroska", None, "pyav")
    if _is_utf16_text(data):
        return None
    return _sniff_mpeg_sync(data)


def _sniff_riff(data: bytes) -> SniffedFormat:
    if len(data) < 12:
        raise CorruptAudio(
            f"the file ends after {len(data)} bytes, inside its RIFF header; upload the whole file"
        )
    form = data[8:12]
    if form in _RIFF_NON_AUDIO:
        raise NotAudio(f"the upload looks like {_RIFF_NON_AUDIO[form]}, not audio")
    if form != b"WAVE":
        raise UnsupportedFormat(
            f"RIFF file of type {form!r} is not audio the service decodes; "
            f"supported formats: {SUPPORTED_FORMATS}"
        )
    return SniffedFormat(_RIFF_IDS[data[:4]], _wav_codec(data), "soundfile")


def _wav_codec(data: bytes) -> str | None:
    """The codec named by the ``fmt `` chunk, or ``None`` when no such chunk is in reach."""
    tag = _wav_format_tag(data)
    if tag is None:
        return None
    if tag in _WAV_CODECS:
        return _WAV_CODECS[tag]
    raise UnsupportedFormat(
        f"WAV files with format tag 0x{tag:04X} are not supported; "
        "convert to PCM WAV (16- or 24-bit) or FLAC"
    )


def _wav_format_tag(data: bytes) -> int | None:
    """Walk the RIFF chunks to ``fmt `` and read its format tag (the subformat if extensible)."""
    endian = ">" if data.startswith(b"RIFX") else "<"
    offset = 12
    for _ in range(_WAV_MAX_CHUNKS_BEFORE_FMT):
        if offset + 8 > len(data):
            return None
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack(endian + "I", data[offset + 4 : offset + 8])
        if chunk_id == b"fmt ":
            return _read_format_tag(data[offset + 8 : offset + 8 + min(size, 40)], endian)
        offset += 8 + size + (size & 1)  # chunks are word-aligned (RIFF spec)
    return None


def _read_format_tag(fmt_chunk: bytes, endian: str) -> int | None:
    if len(fmt_chunk) < 2:
        return None
    (tag,) = struct.unpack(endian + "H", fmt_chunk[:2])
    # WAVEFORMATEXTENSIBLE: the SubFormat GUID at byte 24 starts with the real format tag.
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt_chunk) >= 26:
        (tag,) = struct.unpack(endian + "H", fmt_chunk[24:26])
    return int(tag)


def _sniff_ogg(data: bytes) -> SniffedFormat:
    packet = _first_ogg_packet(data)
    for magic, codec in _OGG_FIRST_PACKETS:
        if packet.startswith(magic):
            backend: Backend = "soundfile" if codec == "vorbis" else "pyav"
            return SniffedFormat("ogg", codec, backend)
    for magic, name in _OGG_UNSUPPORTED:
        if packet.startswith(magic):
            raise UnsupportedFormat(f"{name} is not supported; supported: {SUPPORTED_FORMATS}")
    if len(data) < 27:
        raise CorruptAudio("the Ogg file ends inside its first page header; upload the whole file")
    raise UnsupportedFormat(
        f"Ogg stream with an unknown codec ({packet[:8]!r}); supported: {SUPPORTED_FORMATS}"
    )


def _first_ogg_packet(data: bytes) -> bytes:
    """Start of the first packet of the first page (RFC 3533 section 6, byte 26 = segments)."""
    if len(data) < 27:
        return b""
    segment_count = data[26]
    return data[27 + segment_count : 27 + segment_count + 8]


def _sniff_after_id3(data: bytes) -> SniffedFormat:
    """An ID3v2 tag precedes MP3 (usually), FLAC or ADTS streams: look behind it."""
    offset = _id3v2_size(data)
    if data[offset : offset + 4] == b"fLaC":
        return SniffedFormat("flac", "flac", "soundfile", payload_offset=offset)
    behind = _sniff_mpeg_sync(data[offset : offset + 4])
    return behind if behind is not None else SniffedFormat("mp3", None, "pyav")


def _id3v2_size(data: bytes) -> int:
    """Bytes taken by the ID3v2 tag: header + syncsafe size (+ footer), id3.org v2.4 3.1."""
    if len(data) < _ID3V2_HEADER_BYTES:
        return len(data)
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    has_footer = bool(data[5] & 0x10)
    return _ID3V2_HEADER_BYTES * (2 if has_footer else 1) + size


def _sniff_iso_bmff(data: bytes) -> SniffedFormat:
    brand = data[8:12]
    if brand in _IMAGE_BRANDS:
        raise NotAudio(f"the upload looks like a HEIF/AVIF image (brand {brand!r}), not audio")
    return SniffedFormat("mp4", None, "pyav")


def _sniff_mpeg_sync(data: bytes) -> SniffedFormat | None:
    """MPEG-1/2 audio (Layer I-III) or ADTS AAC, from the first frame header."""
    if len(data) < 4 or data[0] != 0xFF or (data[1] & 0xE0) != 0xE0:
        return None
    if (data[1] & 0xF6) == 0xF0:  # 12-bit sync and layer '00': ADTS
        sampling_index = (data[2] >> 2) & 0x0F
        return (
            SniffedFormat("adts", "aac", "pyav")
            if sampling_index < _ADTS_SAMPLING_INDEXES
            else None
        )
    version_bits, layer_bits = (data[1] >> 3) & 0x03, (data[1] >> 1) & 0x03
    bitrate_index, sampling_index = data[2] >> 4, (data[2] >> 2) & 0x03
    if version_bits == 1 or layer_bits == 0 or bitrate_index == 0x0F or sampling_index == 3:
        return None  # reserved values (ISO/IEC 11172-3 2.4.2.3, 13818-3 2.4.2.3)
    return SniffedFormat("mp3", None, "pyav")


def _raise_if_not_audio(data: bytes) -> None:
    for magic, name in _NON_AUDIO_MAGIC:
        if data.startswith(magic):
            raise NotAudio(f"the upload looks like {name}, not audio; send a recording")
    text_kind = _text_kind(data)
    if text_kind is not None:
        raise NotAudio(
            f"the upload looks like {text_kind}, not audio; send the binary audio file itself"
        )


def _text_kind(data: bytes) -> str | None:
    """``None`` for binary data, else a description of the text (JSON, HTML, base64, ...)."""
    text = _decode_text_prefix(data)
    if text is None:
        return None
    start = text.lstrip().lower()
    if start.startswith(("{", "[")):
        return "JSON text"
    if start.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    if start.startswith(("<?xml", "<svg")):
        return "XML or SVG text"
    if text.lstrip().startswith(_BASE64_AUDIO_PREFIXES):
        return "base64-encoded audio (decode it and upload the raw bytes)"
    return "plain text"


def _decode_text_prefix(data: bytes) -> str | None:
    prefix = data[:_TEXT_SCAN_BYTES]
    encoding = "utf-16" if _has_utf16_bom(prefix) else "utf-8-sig"
    try:
        text = prefix.decode(encoding)
    except UnicodeDecodeError as exc:
        cut_mid_character = exc.start >= len(prefix) - _UTF8_MAX_CHAR_BYTES
        if not (cut_mid_character and len(data) > _TEXT_SCAN_BYTES):
            return None
        text = prefix[: exc.start].decode(encoding)
    return text if all(char.isprintable() or char.isspace() for char in text) else None


def _has_utf16_bom(data: bytes) -> bool:
    return data[:2] in (b"\xff\xfe", b"\xfe\xff")  # Unicode 15.0 section 23.8


def _is_utf16_text(data: bytes) -> bool:
    """UTF-16 text starts with FF FE, which also reads as an MPEG Layer I sync: tell them apart."""
    return _has_utf16_bom(data) and _decode_text_prefix(data) is not None
