"""Per-gender neutral-speech cue norms from real neutral clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.explain.cues import CUE_UNITS
from service.explain.references import (
    DEFAULT_NORMS_PATH,
    NORM_SIGNIFICANT_DIGITS,
    POOLED,
    round_significant,
    summarise_norms,
)
from toolkit.cue_norms import compute_cue_norms
from toolkit.data import load_ravdess
from toolkit.data.types import Utterance

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def test_norms_per_gender_from_neutral_clips_only() -> None:
    utterances = load_ravdess()
    chosen: list[Utterance] = []
    for gender in ("female", "male"):
        chosen += [u for u in utterances if u.gender == gender and u.label == "neutral"][:3]
    chosen += [u for u in utterances if u.label == "angry"][:3]  # ignored: not neutral
    norms = compute_cue_norms(chosen)
    assert set(norms) == {"female", "male", "pooled"}
    assert norms["pooled"]["f0_mean_st"]["count"] == 6
    assert norms["female"]["f0_mean_st"]["count"] == 3
    assert norms["female"]["f0_mean_st"]["mean"] > norms["male"]["f0_mean_st"]["mean"] + 4
    assert set(norms["pooled"]) == set(CUE_UNITS)
    assert all(values["std"] >= 0 for values in norms["pooled"].values())


def test_no_neutral_clip_is_an_error() -> None:
    angry = [u for u in load_ravdess() if u.label == "angry"][:2]
    with pytest.raises(ValueError, match="no neutral clips"):
        compute_cue_norms(angry)


def test_norms_do_not_depend_on_the_order_the_clips_were_summed_in() -> None:
    """The last digits of a float sum depend on its order (and on BLAS threads); the norms are
    rounded to NORM_SIGNIFICANT_DIGITS so that `make evaluate` rewrites the manifest byte for
    byte. This shuffle changes both unrounded statistics in their last bits."""
    values = np.random.default_rng(7).normal(29.6, 4.85, size=125)
    shuffled = values[np.random.default_rng(2).permutation(values.size)]
    assert float(np.mean(values)) != float(np.mean(shuffled))
    assert float(np.std(values, ddof=1)) != float(np.std(shuffled, ddof=1))
    in_order: list[dict[str, float | None]] = [{"f0_mean_st": float(v)} for v in values]
    reordered: list[dict[str, float | None]] = [{"f0_mean_st": float(v)} for v in shuffled]
    assert summarise_norms({POOLED: in_order}) == summarise_norms({POOLED: reordered})


def test_rounding_keeps_nine_significant_digits() -> None:
    assert NORM_SIGNIFICANT_DIGITS == 9
    assert round_significant(-15.77402588907998) == -15.7740259
    assert round_significant(0.000123456789123) == 0.000123456789
    assert round_significant(0.0) == 0.0


@pytest.mark.parametrize(
    "norms_path",
    [MODELS_DIR / "ser-whisper-l2-int8" / "0.3.0" / "manifest.json", DEFAULT_NORMS_PATH],
    ids=["default model's manifest", "service fallback norms"],
)
def test_shipped_norms_are_rounded_as_the_toolkit_writes_them(norms_path: Path) -> None:
    table = json.loads(norms_path.read_text())["cue_norms"]
    values = [
        stats[key] for cues in table.values() for stats in cues.values() for key in ("mean", "std")
    ]
    assert len(values) == 96  # 3 groups x 16 cues x (mean, std)
    assert all(value == round_significant(value) for value in values)
