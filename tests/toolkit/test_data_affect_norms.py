"""Emotion-term affect norms (NRC VAD Lexicon v1.0) and derived affect targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.labels import CANONICAL_LABELS
from toolkit.data import Utterance, affect_target, derive_vad, load_affect_norms, neutral_point


def test_table_holds_the_published_values() -> None:
    norms = load_affect_norms()
    assert sorted(norms) == sorted(CANONICAL_LABELS)
    # NRC-VAD-Lexicon.txt v1.0 rows "anger", "sadness", "neutral", "boredom".
    assert norms["angry"] == (0.167, 0.865, 0.657)
    assert norms["sad"] == (0.052, 0.288, 0.164)
    assert norms["bored"] == (0.167, 0.139, 0.255)
    assert neutral_point() == (0.469, 0.184, 0.357)


def test_derive_vad_interpolates_from_neutral_to_norm() -> None:
    assert derive_vad("angry", 1.0) == pytest.approx((0.167, 0.865, 0.657))
    assert derive_vad("angry", 0.0) == pytest.approx((0.469, 0.184, 0.357))
    # 0.469 + 0.5 * (0.167 - 0.469) = 0.318, 0.184 + 0.5 * 0.681 = 0.5245, 0.357 + 0.5 * 0.3
    assert derive_vad("angry", 0.5) == pytest.approx((0.318, 0.5245, 0.507))


def test_missing_intensity_means_075() -> None:
    assert derive_vad("angry", None) == pytest.approx((0.2425, 0.69475, 0.582))
    assert derive_vad("neutral", None) == pytest.approx(neutral_point())


def test_custom_neutral_point() -> None:
    assert derive_vad("happy", 0.5, (0.5, 0.5, 0.5)) == pytest.approx((0.73, 0.616, 0.675))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="'joy' is not a canonical label"):
        derive_vad("joy", 1.0)
    with pytest.raises(ValueError, match=r"intensity must be in \[0, 1\]"):
        derive_vad("sad", 1.5)


def test_rated_affect_takes_precedence() -> None:
    rated = Utterance(Path("x.wav"), "c", "s", "sad", vad=(0.1, 0.2, 0.3))
    acted = Utterance(Path("x.wav"), "c", "s", "sad", intensity=1.0)
    assert affect_target(rated) == (0.1, 0.2, 0.3)
    assert affect_target(acted) == pytest.approx((0.052, 0.288, 0.164))


def test_table_must_cover_every_label(tmp_path: Path) -> None:
    path = tmp_path / "norms.csv"
    path.write_text("# header\nlabel,term,valence,arousal,dominance\nsad,sadness,0.1,0.2,0.3\n")
    with pytest.raises(ValueError, match="missing labels \\['neutral'"):
        load_affect_norms(path)
