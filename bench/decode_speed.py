"""``python -m bench.decode_speed``: time the audio front end (decode, checks, mono, resample).

Per format, a 3 s real-speech clip (bench.clips) as the bytes an upload carries, run through
the pipeline's own functions; the median of interleaved repeats, in microseconds.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bench.clips import SAMPLING_RATE_HZ, make_clips
from bench.run import default_data_dir
from service.audio.decode import DecodeLimits, decode_audio
from service.audio.prepare import check_finite, resample, to_mono

CLIP_S = 3.0
LIMITS = DecodeLimits(max_duration_s=600.0)


def encoded(signal: np.ndarray, rate_hz: int, channels: int, fmt: str, subtype: str) -> bytes:
    """``signal`` (mono, 16 kHz) resampled to ``rate_hz``, copied to ``channels``, encoded."""
    converted = signal
    if rate_hz != SAMPLING_RATE_HZ:
        converted = soxr.resample(signal, SAMPLING_RATE_HZ, rate_hz)
    frames = np.repeat(converted[:, None], channels, axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, frames, rate_hz, format=fmt, subtype=subtype)
    return buffer.getvalue()


def front_end(data: bytes) -> np.ndarray:
    """What ``service.pipeline`` does before speech activity: 16 kHz mono float32."""
    decoded = decode_audio(data, LIMITS)
    check_finite(decoded.signal)
    mono = to_mono(decoded.signal)
    return resample(mono, decoded.sampling_rate_hz, SAMPLING_RATE_HZ)


def median_us(function: Callable[[], object], repeats: int) -> float:
    """Median microseconds of ``repeats`` calls after one warm-up call."""
    function()
    durations = []
    for _ in range(repeats):
        start_ns = time.perf_counter_ns()
        function()
        durations.append((time.perf_counter_ns() - start_ns) / 1000.0)
    return float(np.median(durations))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_speed", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--repeats", type=int, default=300)
    arguments = parser.parse_args()
    signal = make_clips(arguments.data_dir, {CLIP_S: 1})[CLIP_S][0].signal
    cases = {
        "WAV 16-bit mono 16 kHz": encoded(signal, 16_000, 1, "WAV", "PCM_16"),
        "WAV 16-bit stereo 44.1 kHz": encoded(signal, 44_100, 2, "WAV", "PCM_16"),
        "WAV float mono 48 kHz": encoded(signal, 48_000, 1, "WAV", "FLOAT"),
        "FLAC 16-bit mono 16 kHz": encoded(signal, 16_000, 1, "FLAC", "PCM_16"),
    }
    print("| upload | decode us | decode + checks + mono + resample us |\n|---|---|---|")
    for name, data in cases.items():
        decode_only = median_us(partial(decode_audio, data, LIMITS), arguments.repeats)
        whole = median_us(partial(front_end, data), arguments.repeats)
        print(f"| {name} | {decode_only:.0f} | {whole:.0f} |")


if __name__ == "__main__":
    main()
