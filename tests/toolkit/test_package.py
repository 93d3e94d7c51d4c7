"""The packager's one-sentence model description says how the backbone was trained."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from service.audio.segment import SPEECH_PAD_S
from toolkit.package import (
    config_summary,
    kept_records,
    model_description,
    recorded_crop_margin_s,
)
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


@pytest.mark.parametrize(
    ("recipe", "recorded", "expected_s"),
    [
        ("whisper_l2_noisy.toml", {"final": None}, None),
        ("whisper_l2_noisy_servecrop.toml", {"final": 0.637}, 0.637),
        ("whisper_l2_noisy_crop.toml", {"final": 0.1}, 0.1),
        ("whisper_l2_noisy_crop.toml", None, SPEECH_PAD_S),  # results from before the record
        ("whisper_l2_noisy.toml", None, None),
    ],
)
def test_the_manifest_crops_with_the_margin_evaluation_served(
    recipe: str, recorded: dict[str, float | None] | None, expected_s: float | None
) -> None:
    results = {} if recorded is None else {"crop_margin_s_per_run": recorded}
    config = load_config(CONFIGS / recipe)
    assert recorded_crop_margin_s(results, "final", config) == expected_s


def _makefile_default(variable: str) -> str:
    """The value of ``VARIABLE ?= value`` in the repository's Makefile."""
    for line in (CONFIGS.parents[1] / "Makefile").read_text().splitlines():
        name, _, value = line.partition("?=")
        if name.strip() == variable:
            return value.strip()
    raise AssertionError(f"{variable} has no default in the Makefile")


def test_make_train_trains_the_recipe_the_shipped_default_was_trained_with() -> None:
    repo = CONFIGS.parents[1]
    model_dir = (
        repo
        / "models"
        / f"{_makefile_default('MODEL_NAME')}-int8"
        / _makefile_default("MODEL_VERSION")
    )
    shipped = json.loads((model_dir / "results.json").read_text())["shipped"]
    recipe = load_config(repo / _makefile_default("TRAIN_CONFIG"))
    assert shipped["recipe"] == json.loads(json.dumps(config_summary(recipe)))
    assert (repo / "models" / "DEFAULT").read_text().split()[0] == model_dir.parent.name


def test_re_packaging_a_version_keeps_what_was_recorded_in_it(tmp_path: Path) -> None:
    assert kept_records(tmp_path, "a" * 64) == {}, "a first export has nothing to keep"
    records = {
        "reproduction": {"sha256_shipped": "a" * 64, "identical_file": True},
        "seed_spread": {"seeds": [0, 1]},
        "recipe_comparison": {"paired": False},
        "serving_comparison": {"paired": True},
    }
    previous = {"int8": {"figures": 1}, "shipped": {"run": "final"}, **records}
    (tmp_path / "results.json").write_text(json.dumps(previous))
    assert kept_records(tmp_path, "a" * 64) == records
    other_graph = kept_records(tmp_path, "b" * 64)
    assert "reproduction" not in other_graph, "it compared another graph"
    assert set(other_graph) == {"seed_spread", "recipe_comparison", "serving_comparison"}


def test_a_recipe_option_added_later_is_recorded_only_when_set() -> None:
    """Re-packaging a model trained before ``babble_same_corpus`` existed must not add it to
    the recipe its card prints (the card would no longer re-render byte for byte)."""
    default = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90.toml")
    assert "babble_same_corpus" not in config_summary(default)["augment"]
    same_corpus = replace(default, augment=replace(default.augment, babble_same_corpus=True))
    assert config_summary(same_corpus)["augment"]["babble_same_corpus"] is True
    assert set(asdict(default)["augment"]) - set(config_summary(default)["augment"]) == {
        "babble_same_corpus",
        "noise_kind_weights",
    }
    mixed = replace(default, augment=replace(default.augment, noise_kind_weights=(0.2, 0.2, 0.6)))
    assert config_summary(mixed)["augment"]["noise_kind_weights"] == (0.2, 0.2, 0.6)
    assert "average_from_epoch" not in config_summary(default)["optim"]
    averaged = replace(default, optim=replace(default.optim, average_from_epoch=5))
    assert config_summary(averaged)["optim"]["average_from_epoch"] == 5
    assert "consistency" not in config_summary(default)["loss"]
    consistent = replace(default, loss=replace(default.loss, consistency=1.0))
    assert config_summary(consistent)["loss"]["consistency"] == 1.0
