"""Reference values of the cues: per-gender neutral-speech norms, and z-scores against them.

Norms are ``{group: {cue: {"mean", "std", "count"}}}`` with groups ``female``, ``male`` and
``pooled`` (both together). The toolkit computes them from the training speakers' neutral
clips (``toolkit/cue_norms.py``) and writes them into the manifest's ``cue_norms``. A model
whose manifest has none falls back to the built-in norms shipped with the service
(``default_cue_norms.json``, the same computation over every neutral clip of RAVDESS and EmoDB);
the response says which norms and which group were used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from service.explain.cues import CueSet, interval_mask, measure_cues
from service.speech.activity import detect_speech

Gender = Literal["female", "male"]
NormGroup = Literal["female", "male", "pooled"]
NormTable = dict[str, dict[str, dict[str, float]]]
POOLED: Final = "pooled"
DEFAULT_NORMS_PATH: Final[Path] = Path(__file__).with_name("default_cue_norms.json")
MIN_NORM_STD: Final[float] = 1e-9  # a norm with no spread gives no z-score
NORM_SIGNIFICANT_DIGITS: Final[int] = 9
"""Norm means and standard deviations are rounded to this many significant digits: the
measurement's last digits depend on summation order (one BLAS thread or two moves the 17th),
and a cue norm means nothing past its ninth digit, so the manifest regenerates byte for byte."""


@dataclass(frozen=True)
class CueNorm:
    """Neutral-speech mean and standard deviation of one cue (in the cue's unit)."""

    mean: float
    std: float
    count: int


@dataclass(frozen=True)
class ChosenNorms:
    """The norms used for one explanation.

    Attributes:
        norms: cue -> norm (cues without a norm are absent).
        group: ``female``, ``male`` or ``pooled``.
        source: ``"model manifest"`` or ``"built-in (RAVDESS + EmoDB neutral clips)"``.
        notes: what fell back to what, in plain words.
    """

    norms: dict[str, CueNorm]
    group: NormGroup
    source: str
    notes: tuple[str, ...]

    def z_score(self, cue: str, value: float | None) -> float | None:
        """``(value - mean) / std`` or None (no value, no norm, or a norm without spread)."""
        norm = self.norms.get(cue)
        if value is None or norm is None or norm.std < MIN_NORM_STD:
            return None
        return (value - norm.mean) / norm.std


MANIFEST_SOURCE: Final[str] = "model manifest"
BUILT_IN_SOURCE: Final[str] = "built-in (RAVDESS + EmoDB neutral clips)"


def choose_norms(manifest_norms: NormTable, gender: Gender | None) -> ChosenNorms:
    """The manifest's norms for ``gender`` (pooled when ``gender`` is None or missing there),
    or the built-in norms when the manifest has none."""
    notes: list[str] = []
    table, source = manifest_norms, MANIFEST_SOURCE
    if not manifest_norms:
        table, source = default_norms(), BUILT_IN_SOURCE
        notes.append("the model's manifest has no cue norms; built-in norms are used")
    group: NormGroup = gender if gender is not None else POOLED
    if gender is None:
        notes.append("speaker gender not given (?gender=female|male); pooled norms are used")
    elif gender not in table:
        notes.append(f"no {gender} norms in the {source}; pooled norms are used")
        group = POOLED
    return ChosenNorms(_parse_group(table.get(group, {})), group, source, tuple(notes))


@cache
def default_norms(path: Path = DEFAULT_NORMS_PATH) -> NormTable:
    """The built-in norm table (read once)."""
    document: NormTable = json.loads(path.read_text(encoding="utf-8"))["cue_norms"]
    return document


def _parse_group(group: dict[str, dict[str, float]]) -> dict[str, CueNorm]:
    return {
        cue: CueNorm(float(values["mean"]), float(values["std"]), int(values.get("count", 0)))
        for cue, values in group.items()
    }


def measure_speech_cues(signal: npt.NDArray[np.floating], sampling_rate_hz: int) -> CueSet:
    """Cues of a whole clip over its detected speech (how norms are measured).

    Args:
        signal: mono, shape ``(samples,)``, full scale 1, at least 11 kHz.
        sampling_rate_hz: its rate.
    """
    x = np.asarray(signal, dtype=np.float32)
    speech = detect_speech(x, sampling_rate_hz)
    spans = [(region.start_s, region.end_s) for region in speech.regions]
    mask = interval_mask(spans, x.shape[0], sampling_rate_hz) if spans else None
    return measure_cues(x, sampling_rate_hz, mask)


def round_significant(value: float, digits: int = NORM_SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (``0.0`` stays ``0.0``)."""
    return float(f"{value:.{digits}g}")


def summarise_norms(values_by_group: dict[str, list[dict[str, float | None]]]) -> NormTable:
    """Mean, standard deviation (ddof 1) and count per group and cue over measured clips.

    Means and standard deviations are rounded to ``NORM_SIGNIFICANT_DIGITS``.
    """
    table: NormTable = {}
    for group, clips in values_by_group.items():
        cues = sorted({cue for clip in clips for cue in clip})
        table[group] = {}
        for cue in cues:
            values = np.array([c[cue] for c in clips if c.get(cue) is not None], dtype=float)
            if values.size >= 2:
                table[group][cue] = {
                    "mean": round_significant(float(values.mean())),
                    "std": round_significant(float(values.std(ddof=1))),
                    "count": float(values.size),
                }
    return table
