"""Manifest rules that pydantic enforces when a model directory is read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.audio.segment import SPEECH_PAD_S
from service.inference.manifest import MAX_CROP_MARGIN_S, Windowing


def test_window_longer_than_the_graph_accepts_is_refused() -> None:
    assert Windowing(window_s=6.0, hop_s=3.0, max_input_s=30.0).max_input_s == 30.0
    assert Windowing(window_s=6.0, hop_s=3.0).max_input_s is None
    with pytest.raises(ValidationError, match="window_s must not exceed max_input_s"):
        Windowing(window_s=40.0, hop_s=20.0, max_input_s=30.0)


def test_hop_longer_than_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="hop_s must not exceed window_s"):
        Windowing(window_s=2.0, hop_s=3.0)


def test_crop_margin_defaults_to_the_speech_padding_and_is_bounded() -> None:
    assert Windowing(window_s=6.0, hop_s=3.0).crop_margin_s == SPEECH_PAD_S
    assert Windowing(window_s=6.0, hop_s=3.0, crop_margin_s=0.64).crop_margin_s == 0.64
    for margin_s in (-0.1, MAX_CROP_MARGIN_S + 0.1):
        with pytest.raises(ValidationError, match="crop_margin_s"):
            Windowing(window_s=6.0, hop_s=3.0, crop_margin_s=margin_s)
