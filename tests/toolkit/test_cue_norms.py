"""Per-gender neutral-speech cue norms from real neutral clips."""

from __future__ import annotations

import pytest

from service.explain.cues import CUE_UNITS
from toolkit.cue_norms import compute_cue_norms
from toolkit.data import load_ravdess
from toolkit.data.types import Utterance


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
