"""Property-based fuzzing of the decoding entry point with hypothesis.

The entry point is what the pipeline runs on every upload: :func:`decode_audio` then
:func:`prepare_signal` (duration and finite checks, mix-down, resampling). The property, for any
bytes: it returns finite mono float32 audio, or raises one of the service's own client errors
(an ``InputError``, answered as a 4xx), never any other exception.

Inputs: random bytes, random bytes behind each container's signature, and bit flips,
truncations, overwrites and splices of a valid short file of every format. Each test is bounded
by ``max_examples`` and a per-example ``deadline`` (together well under a minute).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.audio.decode import DecodeLimits, decode_audio
from service.audio.prepare import prepare_signal
from service.errors import CorruptAudio, InputError
from tests.audio_factory import FORMATS, flip_bits, splice, tone_signal, truncate

MODEL_RATE_HZ: Final = 16000
MIN_DURATION_S: Final = 0.001  # low, so that short mutants reach the finite check and resampling
LIMITS: Final = DecodeLimits(max_duration_s=30.0)
DEADLINE_MS: Final = 2000
"""Per example: a hang or a runaway decode fails; ordinary examples take a few milliseconds."""
SIGNATURES: Final = (
    b"RIFF\x24\x00\x00\x00WAVEfmt ",
    b"RF64\xff\xff\xff\xffWAVEds64",
    b"fLaC\x00\x00\x00\x22",
    b"OggS\x00\x02",
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"\xff\xfb\x90\x00",  # MPEG-1 Layer III frame header
    b"\xff\xf1\x50\x80",  # ADTS AAC frame header
    b"\x00\x00\x00\x20ftypM4A ",
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm",
)
"""The first bytes of each container the sniffer recognises, so the garbage reaches a decoder."""


def fuzz_settings(max_examples: int) -> settings:
    """Bounded, and derandomised so that every run tries the same inputs (stable figures)."""
    return settings(
        max_examples=max_examples,
        deadline=DEADLINE_MS,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
        database=None,
    )


def _seed_files() -> dict[str, bytes]:
    """0.25 s of a tone in every format (first channel count each encoder takes), at 16 kHz."""
    return {
        name: fmt.encode(tone_signal(0.25, MODEL_RATE_HZ, fmt.channel_counts[0]), MODEL_RATE_HZ)
        for name, fmt in FORMATS.items()
    }


SEEDS: Final = _seed_files()
SEED_NAMES: Final = sorted(SEEDS)


def assert_decodes_or_refuses(data: bytes) -> None:
    """The property: valid finite mono float32 audio, or an ``InputError`` (a 4xx)."""
    try:
        decoded = decode_audio(data, LIMITS)
        signal = prepare_signal(decoded, MODEL_RATE_HZ, MIN_DURATION_S, LIMITS.max_duration_s)
    except InputError as exc:
        assert 400 <= exc.status < 500, exc
        assert exc.detail, type(exc).__name__
        return
    assert signal.dtype == np.float32 and signal.ndim == 1 and signal.size > 0
    assert np.isfinite(signal).all()


def _at(data: bytes, position: float) -> int:
    """Byte offset at ``position`` (0..1) of ``data``."""
    return int(position * (len(data) - 1))


positions = st.floats(0.0, 1.0, allow_nan=False)


@fuzz_settings(2000)
@given(data=st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    assert_decodes_or_refuses(data)


@fuzz_settings(2000)
@given(signature=st.sampled_from(SIGNATURES), garbage=st.binary(max_size=4096))
def test_random_bytes_behind_a_signature(signature: bytes, garbage: bytes) -> None:
    assert_decodes_or_refuses(signature + garbage)


@fuzz_settings(1500)
@given(name=st.sampled_from(SEED_NAMES), flips=st.lists(positions, min_size=1, max_size=16))
def test_bit_flips(name: str, flips: list[float]) -> None:
    data = SEEDS[name]
    bit_count = 8 * len(data)
    assert_decodes_or_refuses(flip_bits(data, [int(f * (bit_count - 1)) for f in flips]))


@fuzz_settings(500)
@given(name=st.sampled_from(SEED_NAMES), keep=positions)
def test_truncations(name: str, keep: float) -> None:
    data = SEEDS[name]
    assert_decodes_or_refuses(truncate(data, _at(data, keep)))


@fuzz_settings(1500)
@given(
    name=st.sampled_from(SEED_NAMES),
    position=positions,
    replacement=st.binary(min_size=1, max_size=256),
    insert=st.booleans(),
)
def test_overwrites_and_insertions(
    name: str, position: float, replacement: bytes, insert: bool
) -> None:
    data = SEEDS[name]
    at = _at(data, position)
    rest = at if insert else at + len(replacement)
    assert_decodes_or_refuses(data[:at] + replacement + data[rest:])


@fuzz_settings(1000)
@given(
    head=st.sampled_from(SEED_NAMES),
    tail=st.sampled_from(SEED_NAMES),
    head_cut=positions,
    tail_cut=positions,
)
def test_splices(head: str, tail: str, head_cut: float, tail_cut: float) -> None:
    first, second = SEEDS[head], SEEDS[tail]
    assert_decodes_or_refuses(splice(first, second, _at(first, head_cut), _at(second, tail_cut)))


@pytest.mark.parametrize("name", ["ogg_opus", "ogg_flac", "ogg_vorbis"])
def test_ogg_cut_between_pages_is_corrupt(name: str) -> None:
    """Found by the hostile-input corpus: FFmpeg decoded a cut Ogg Opus file as a shorter one."""
    data = FORMATS[name].encode(tone_signal(4.0, MODEL_RATE_HZ), MODEL_RATE_HZ)
    with pytest.raises(CorruptAudio, match="damaged or truncated at byte"):
        decode_audio(truncate(data, len(data) // 2), LIMITS)
