"""The packager's one-sentence model description says how the backbone was trained."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.package import model_description
from toolkit.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "toolkit" / "configs"


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ("compact.toml", "Compact CNN + FLAM speech emotion model (int8), trained from scratch"),
        ("whisper_frozen.toml", "Frozen pretrained Whisper tiny.en encoder"),
        ("whisper_top2.toml", "the encoder's top 2 of 4 layers fine-tuned"),
        ("whisper_top2.toml", "speech emotion model (dynamic int8)"),
        ("whisper_l2.toml", "Whisper tiny.en encoder (its bottom 2 of 4 layers)"),
        ("whisper_l2.toml", "the encoder's top 1 of 2 layers fine-tuned"),
        ("whisper_l2.toml", "speech emotion model (dynamic int8, float convolutions)"),
    ],
)
def test_the_description_names_the_backbone_and_what_of_it_was_trained(
    recipe: str, expected: str
) -> None:
    description = model_description(
        load_config(CONFIGS / recipe), "int8", "final", Path("runs/example")
    )
    assert expected in description
    assert description.endswith("run 'final' of example.")
    assert ("Frozen" in description) == (recipe == "whisper_frozen.toml")
