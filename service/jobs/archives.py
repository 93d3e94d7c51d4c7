"""Unpack one zip or tar (optionally gzip/bzip2/xz-compressed) upload into files, within limits.

Only regular files are taken; directories, links, devices and the usual clutter (``__MACOSX/``,
names starting with ``.``) are skipped. Member names are labels for the results, never paths on
disk: nothing is ever written to the filesystem. Sizes are checked against the declared size
and again while reading, so a decompression bomb costs at most the limits.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

from service.errors import InvalidArchive, JobTooLarge, PayloadTooLarge, TooManyFiles

_COMPRESSED_TAR_MAGIC: Final = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_TAR_MAGIC_OFFSET: Final = 257
_ENTRIES_PER_FILE: Final = 4
"""Tar entries of any kind (directories included) read per allowed file before refusing."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int
    max_file_bytes: int
    max_total_bytes: int


def is_archive(data: bytes) -> bool:
    """True for zip, tar and compressed-tar signatures (a compressed file is tried as a tar)."""
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return True
    if data[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return True
    return data.startswith(_COMPRESSED_TAR_MAGIC)


def unpack(data: bytes, limits: ArchiveLimits) -> list[tuple[str, bytes]]:
    """``(member name, bytes)`` of every regular file, in archive order.

    Raises:
        InvalidArchive: damaged, encrypted, not really an archive, or holding no files.
        TooManyFiles: more than ``max_files`` files.
        PayloadTooLarge: one member larger than ``max_file_bytes``.
        JobTooLarge: members adding up to more than ``max_total_bytes``.
    """
    if data.startswith(b"PK"):
        members = _zip_members(data, limits.max_file_bytes)
    else:
        max_entries = _ENTRIES_PER_FILE * limits.max_files + 100
        members = _tar_members(data, limits.max_file_bytes, max_entries)
    files = list(_within_limits(members, limits))
    if not files:
        raise InvalidArchive("the archive holds no files; put the recordings in it")
    return files


def _within_limits(
    members: Iterator[tuple[str, bytes]], limits: ArchiveLimits
) -> Iterator[tuple[str, bytes]]:
    total_bytes = 0
    for count, (name, content) in enumerate(members, start=1):
        if count > limits.max_files:
            raise TooManyFiles(
                f"the archive holds more than {limits.max_files} files (SER_JOB_MAX_FILES); "
                "split it into several jobs"
            )
        total_bytes += len(content)
        if total_bytes > limits.max_total_bytes:
            raise JobTooLarge(
                f"the archive unpacks to more than {limits.max_total_bytes} bytes of audio "
                "(SER_JOB_MAX_AUDIO_BYTES); split it into several jobs"
            )
        yield name, content


def _read_member(name: str, declared_bytes: int, stream: IO[bytes], limit_bytes: int) -> bytes:
    """The member's bytes, checked against the limit before and while reading."""
    _check_file_size(name, declared_bytes, limit_bytes)
    content = stream.read(limit_bytes + 1)
    _check_file_size(name, len(content), limit_bytes)
    return content


def _check_file_size(name: str, size_bytes: int, limit_bytes: int) -> None:
    if size_bytes > limit_bytes:
        raise PayloadTooLarge(
            f"archive member '{name[:100]}' is {size_bytes} bytes or more; the limit per file is "
            f"{limit_bytes} bytes (SER_MAX_UPLOAD_BYTES)"
        )


def _skipped(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith(".") or parts[-1] == ""


def _zip_members(data: bytes, limit_bytes: int) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir() or _skipped(info.filename):
                    continue
                if info.flag_bits & 0x1:
                    raise InvalidArchive(
                        f"zip member '{info.filename[:100]}' is encrypted; send it unencrypted"
                    )
                with archive.open(info) as stream:
                    content = _read_member(info.filename, info.file_size, stream, limit_bytes)
                yield info.filename, content
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise InvalidArchive(f"the zip archive could not be read: {exc}") from exc


def _tar_members(data: bytes, limit_bytes: int, max_entries: int) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for name, size_bytes, stream in _tar_files(archive, max_entries):
                yield name, _read_member(name, size_bytes, stream, limit_bytes)
    except (tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise InvalidArchive(
            f"the upload looks like a (compressed) tar archive but could not be read: {exc}; "
            "send a zip, a tar, a tar.gz or the audio files themselves"
        ) from exc


def _tar_files(archive: tarfile.TarFile, max_entries: int) -> Iterator[tuple[str, int, IO[bytes]]]:
    for seen, member in enumerate(archive, start=1):
        if seen > max_entries:
            raise InvalidArchive("the archive has too many entries; send the files themselves")
        if not member.isfile() or _skipped(member.name):
            continue
        stream = archive.extractfile(member)
        if stream is not None:
            yield member.name, member.size, stream
