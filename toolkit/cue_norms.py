"""Per-gender neutral-speech cue norms for a model's manifest (``manifest.cue_norms``).

``compute_cue_norms(utterances)`` measures every cue of ``service.explain.CUE_UNITS`` over the
detected speech of each *neutral* clip of the given utterances (pass the model's training
speakers) and returns ``{"female"|"male"|"pooled": {cue: {"mean", "std", "count"}}}``: the
mean and sample standard deviation over clips. ``pooled`` holds every neutral clip, including
speakers of unknown gender. The explanation measures cues the same way
(``service.explain.references.measure_speech_cues``), so z-scores compare like with like.

Run ``python -m toolkit.cue_norms`` to regenerate the service's built-in fallback norms
(``service/explain/default_cue_norms.json``) from every neutral clip of RAVDESS and EmoDB.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import numpy as np
import soundfile
import soxr

from service.explain.references import (
    DEFAULT_NORMS_PATH,
    POOLED,
    NormTable,
    measure_speech_cues,
    summarise_norms,
)
from toolkit.data.types import Utterance

NEUTRAL_LABEL: Final[str] = "neutral"
NORM_SAMPLING_RATE_HZ: Final[int] = 16_000
"""Clips are measured at 16 kHz, the served models' rate (the shared corpora are 16 kHz)."""


def compute_cue_norms(
    utterances: Iterable[Utterance], sampling_rate_hz: int = NORM_SAMPLING_RATE_HZ
) -> NormTable:
    """Norms over the neutral clips of ``utterances`` (see the module docstring).

    Raises:
        ValueError: there is no neutral clip among ``utterances``.
    """
    neutral = [u for u in utterances if u.label == NEUTRAL_LABEL]
    if not neutral:
        raise ValueError("no neutral clips among the utterances; norms need neutral speech")
    by_group: dict[str, list[dict[str, float | None]]] = {POOLED: []}
    for utterance in neutral:
        values = measure_speech_cues(read_mono(utterance.path, sampling_rate_hz), sampling_rate_hz)
        row = values.values_by_name()
        by_group[POOLED].append(row)
        if utterance.gender in ("female", "male"):
            by_group.setdefault(utterance.gender, []).append(row)
    return summarise_norms(by_group)


def read_mono(path: Path, sampling_rate_hz: int) -> np.ndarray:
    """A clip as mono float32 ``(samples,)`` at ``sampling_rate_hz``."""
    signal, rate_hz = soundfile.read(path, dtype="float32", always_2d=True)
    mono = signal.mean(axis=1)
    if rate_hz != sampling_rate_hz:
        mono = soxr.resample(mono, rate_hz, sampling_rate_hz)
    return np.asarray(mono, dtype=np.float32)


def write_default_norms(utterances: Sequence[Utterance], path: Path = DEFAULT_NORMS_PATH) -> Path:
    """Compute norms over ``utterances`` and write them as the service's built-in norms."""
    norms = compute_cue_norms(utterances)
    document = {
        "description": (
            "Neutral-speech cue norms over every neutral clip of RAVDESS and EmoDB "
            "(python -m toolkit.cue_norms); used when a model's manifest has no cue_norms"
        ),
        "cue_norms": norms,
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> None:
    """Regenerate ``service/explain/default_cue_norms.json`` (or the path in ``argv[0]``)."""
    from toolkit.data import load_emodb, load_ravdess

    target = Path(argv[0]) if argv else DEFAULT_NORMS_PATH
    print(write_default_norms([*load_ravdess(), *load_emodb()], target))


if __name__ == "__main__":
    main(sys.argv[1:])
