"""The ablation spec covers what issue 3 asks for, and the table is built from saved results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from toolkit.ablation import Variant, ablate, backbone_description, read_spec, variant_config
from toolkit.train.config import DataConfig, TrainConfig, load_config

SPEC = Path(__file__).resolve().parents[2] / "toolkit" / "configs" / "ablations.toml"


def test_spec_has_every_required_variant() -> None:
    spec = read_spec(SPEC)
    configs = {v.name: variant_config(v) for v in spec.variants}
    default = configs["default"]
    assert default.augment.eam_probability > 0 and default.model.pooling.startswith("flam")
    assert configs["no_eam"].augment.eam_probability == 0.0
    assert configs["mean_pooling"].model.pooling == "mean"
    for loss in ("focal", "center", "supcon"):
        assert getattr(configs[f"no_{loss}"].loss, loss) == 0.0
        assert getattr(default.loss, loss) > 0.0
    assert configs["whisper_frozen"].model.backbone != default.model.backbone
    assert {c.optim.epochs for c in configs.values()} == {20}, "same budget for every variant"


def _fake_variant(out_dir: Path, ravdess_ua: float, emodb_ua: float) -> None:
    run = out_dir / "fold0"
    run.mkdir(parents=True)
    (run / "history.json").write_text(json.dumps([{"validation_score": 0.5}]))
    in_corpus = {
        "ravdess": {"all_labels": {"ua": ravdess_ua}},
        "emodb": {"all_labels": {"ua": emodb_ua}},
    }
    results = {"fp32": {"in_corpus": in_corpus, "calibration": {"ece_after": 0.04}}}
    (out_dir / "results.json").write_text(json.dumps(results))


def test_table_reports_deltas_against_default(tmp_path: Path) -> None:
    _fake_variant(tmp_path / "default", 0.60, 0.50)
    _fake_variant(tmp_path / "no_eam", 0.56, 0.50)
    markdown = ablate(SPEC, tmp_path, table_only=True).read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines()}
    assert "| +0.0 |" in rows["default"]
    assert "| -2.0 |" in rows["no_eam"]  # mean of (56, 50) vs mean of (60, 50)
    assert "no_supcon" not in rows  # not trained: no row, no invented figure
    document = json.loads((tmp_path / "ablation.json").read_text())
    assert [r["variant"] for r in document["variants"]] == ["default", "no_eam"]


def test_paired_bootstrap_interval_brackets_the_difference() -> None:
    import numpy as np

    from toolkit.ablation import TestOutcomes, paired_bootstrap_interval

    rng = np.random.default_rng(1)
    true = rng.integers(0, 4, size=200)
    corpus = np.array(["ravdess", "emodb"] * 100)
    noisy = np.where(rng.random(200) < 0.5, true, (true + 1) % 4)
    reference = TestOutcomes(true, noisy, corpus)
    assert paired_bootstrap_interval(reference, reference, resamples=200) == (0.0, 0.0)
    perfect = TestOutcomes(true, true, corpus)
    low, high = paired_bootstrap_interval(perfect, reference, resamples=200)
    assert 0.3 < low < 0.5 < high < 0.7  # the true gain is about 0.5


WHISPER_SPEC = SPEC.with_name("ablations_whisper.toml")


def test_fine_tuning_spec_compares_against_the_frozen_encoder(tmp_path: Path) -> None:
    spec = read_spec(WHISPER_SPEC)
    assert spec.reference == "whisper_frozen" and spec.runs == ("fold0",)
    configs = {v.name: variant_config(v) for v in spec.variants}
    tuned = {name: c.model.whisper_trainable_layers for name, c in configs.items()}
    assert tuned == {"whisper_frozen": 0, "whisper_top1": 1, "whisper_top2": 2, "whisper_all": 4}
    assert {c.model.backbone for c in configs.values()} == {"whisper_tiny"}
    assert {c.optim.epochs for c in configs.values()} == {20}, "same budget for every variant"
    _fake_variant(tmp_path / "whisper_frozen", 0.60, 0.60)
    _fake_variant(tmp_path / "whisper_top2", 0.64, 0.62)
    markdown = ablate(WHISPER_SPEC, tmp_path, table_only=True).read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines()}
    assert "| vs whisper_frozen |" in markdown
    assert "| +3.0 |" in rows["whisper_top2"]


def test_another_reference_gets_its_own_table_and_leaves_the_spec_table(tmp_path: Path) -> None:
    _fake_variant(tmp_path / "whisper_frozen", 0.60, 0.60)
    _fake_variant(tmp_path / "whisper_top2", 0.64, 0.62)
    _fake_variant(tmp_path / "whisper_all", 0.66, 0.66)
    spec_table = ablate(WHISPER_SPEC, tmp_path, table_only=True)
    against_top2 = ablate(WHISPER_SPEC, tmp_path, table_only=True, reference="whisper_top2")
    assert against_top2.name == "ablation_vs_whisper_top2.md"
    rows = {
        line.split(" | ")[0].strip("| "): line for line in against_top2.read_text().splitlines()
    }
    assert "| vs whisper_top2 |" in rows["variant"]
    assert "| +3.0 |" in rows["whisper_all"] and "| -3.0 |" in rows["whisper_frozen"]
    assert "| vs whisper_frozen |" in spec_table.read_text()  # the spec's table is kept
    document = json.loads((tmp_path / "ablation_vs_whisper_top2.json").read_text())
    assert document["reference"] == "whisper_top2"


def test_an_unknown_reference_or_variant_is_refused_before_anything_is_trained(
    tmp_path: Path,
) -> None:
    from toolkit.ablation import UnknownVariantError

    with pytest.raises(UnknownVariantError, match=r"whisper_top3.*whisper_frozen, whisper_top1"):
        ablate(WHISPER_SPEC, tmp_path, ["whisper_top1"], reference="whisper_top3")
    with pytest.raises(UnknownVariantError, match=r"variant 'whisper_al' is not a variant"):
        ablate(WHISPER_SPEC, tmp_path, ["whisper_top1", "whisper_al"])  # a typo trains nothing
    assert not any(tmp_path.iterdir())


def test_the_command_line_names_the_unknown_reference_and_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from toolkit.cli import main

    argv = ["ablate", "--spec", str(WHISPER_SPEC), "--out", str(tmp_path), "--table-only"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--reference", "nope"])
    assert exit_info.value.code == 2
    assert "ablate: reference 'nope' is not a variant" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--variants", "whisper_top2,nope"])
    assert exit_info.value.code == 2
    assert "ablate: variant 'nope' is not a variant" in capsys.readouterr().err


def test_the_recorded_whole_encoder_run_misses_its_pre_registered_margin() -> None:
    """docs/training.md, "The whole encoder fully fine-tuned": whisper_all needed more than 4
    points of mean UA over whisper_top2 (same machine, fold 0, seed 0); it measured -2.2."""
    docs = SPEC.parents[2] / "docs"
    document = json.loads((docs / "ablation_whisper_rerun_vs_top2.json").read_text())
    assert document["reference"] == "whisper_top2" and document["runs"] == ["fold0"]
    mean = {row["variant"]: row["test_ua_mean"] for row in document["variants"]}
    assert set(mean) == {"whisper_frozen", "whisper_top1", "whisper_top2", "whisper_all"}
    difference_points = 100 * (mean["whisper_all"] - mean["whisper_top2"])
    assert round(difference_points, 1) == -2.2 and not difference_points > 4.0
    spec_table = json.loads((docs / "ablation_whisper_rerun.json").read_text())
    assert {row["variant"]: row["test_ua_mean"] for row in spec_table["variants"]} == mean
    seed1 = json.loads((docs / "ablation_whisper_rerun_seed1_vs_top2.json").read_text())
    seed1_mean = {row["variant"]: row["test_ua_mean"] for row in seed1["variants"]}
    assert round(100 * (seed1_mean["whisper_all"] - seed1_mean["whisper_top2"]), 1) == -2.5


def test_the_whisper_training_recipe_is_the_measured_top2_variant() -> None:
    """`make train-whisper` must train what the fine-tuning table measured, nothing else; only
    the int8 method of its export differs (chosen by `toolkit compare-int8`)."""
    spec = read_spec(WHISPER_SPEC)
    measured = variant_config(next(v for v in spec.variants if v.name == "whisper_top2"))
    recipe = load_config(SPEC.with_name("whisper_top2.toml"))
    assert recipe.export.int8_method == "dynamic" and measured.export.int8_method == "static"
    assert replace(recipe, export=measured.export) == measured


def test_extra_overrides_reach_only_the_variants_trained_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import toolkit.ablation as ablation

    trained: dict[str, TrainConfig] = {}

    def record(variant: Variant, runs: Sequence[str], out_dir: Path) -> dict[str, object]:
        trained[variant.name] = variant_config(variant)
        _fake_variant(out_dir, 0.5, 0.5)
        return {}

    monkeypatch.setattr(ablation, "run_variant", record)
    ablate(WHISPER_SPEC, tmp_path, ["whisper_top1"], extra_overrides=["optim.threads=2"])
    assert list(trained) == ["whisper_top1"]
    assert trained["whisper_top1"].optim.threads == 2
    assert trained["whisper_top1"].model.whisper_trainable_layers == 1  # the spec's own set


def test_variants_another_process_finished_during_training_are_in_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes may share an out dir (one variant each); the table of the one that
    finishes last lists both, with its difference against the reference."""
    import toolkit.ablation as ablation

    def train_while_the_other_process_finishes(
        variant: Variant, runs: Sequence[str], out_dir: Path
    ) -> dict[str, object]:
        _fake_variant(tmp_path / "whisper_frozen", 0.60, 0.60)  # the other process
        _fake_variant(out_dir, 0.70, 0.66)
        return {}

    monkeypatch.setattr(ablation, "run_variant", train_while_the_other_process_finishes)
    markdown = ablate(WHISPER_SPEC, tmp_path, ["whisper_all"]).read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines()}
    assert "| +8.0 |" in rows["whisper_all"] and "| +0.0 |" in rows["whisper_frozen"]


def test_backbone_rows_name_how_much_of_the_encoder_was_fine_tuned() -> None:
    assert backbone_description({"backbone": "compact"}) == "compact"
    assert backbone_description({"backbone": "whisper_tiny"}) == "whisper_tiny, frozen"
    tuned = {"backbone": "whisper_tiny", "whisper_trainable_layers": 2}
    assert backbone_description(tuned) == "whisper_tiny, top 2 layers fine-tuned"
    truncated = {**tuned, "whisper_layers": 2, "whisper_trainable_layers": 1}
    expected = "whisper_tiny, bottom 2 of 4 layers, top 1 layer fine-tuned"
    assert backbone_description(truncated) == expected


def test_the_noisy_experiment_differs_from_the_default_recipe_only_in_noise() -> None:
    """docs/training.md, "More noise in training" compares the two recipes fold by fold: they
    may differ in the cached views and the noise share, nothing else."""
    default = load_config(SPEC.with_name("whisper_l2.toml"))
    noisy = load_config(SPEC.with_name("whisper_l2_noisy.toml"))
    assert (noisy.data.frozen_views, noisy.augment.noise_probability) == (5, 0.6)
    assert (default.data.frozen_views, default.augment.noise_probability) == (3, 0.3)
    assert replace(noisy, data=default.data, augment=default.augment) == default


def test_the_silence_experiment_differs_from_the_default_recipe_only_in_silence() -> None:
    """docs/training.md, "Silence around the clip in training" compares it with the default
    run for run: the silence share is the one difference."""
    default = load_config(SPEC.with_name("whisper_l2_noisy.toml"))
    silence = load_config(SPEC.with_name("whisper_l2_noisy_silence.toml"))
    assert (default.augment.silence_probability, silence.augment.silence_probability) == (0, 0.5)
    assert replace(silence, augment=default.augment) == default


def test_the_served_crop_experiment_differs_from_the_default_recipe_only_when_served() -> None:
    """docs/training.md, "Cutting silence at test time": the same training, served cropped."""
    default = load_config(SPEC.with_name("whisper_l2_noisy.toml"))
    served = load_config(SPEC.with_name("whisper_l2_noisy_servecrop.toml"))
    assert served.data.serve_crop_to_training_silence and not served.data.speech_crop
    assert replace(served, data=default.data) == default


def test_the_quantile_margin_differs_from_the_mean_margin_only_in_its_quantile() -> None:
    mean = load_config(SPEC.with_name("whisper_l2_noisy_servecrop.toml"))
    q90 = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90.toml"))
    assert (mean.data.serve_crop_silence_quantile, q90.data.serve_crop_silence_quantile) == (
        None,
        0.9,
    )
    assert replace(q90, data=mean.data) == mean


def test_cropping_in_training_and_only_when_served_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        DataConfig(speech_crop=True, serve_crop_to_training_silence=True)
    with pytest.raises(ValueError, match="serve_crop_silence_quantile"):
        DataConfig(serve_crop_to_training_silence=True, serve_crop_silence_quantile=90.0)


def test_the_same_corpus_babble_experiment_differs_from_the_default_only_in_its_babble() -> None:
    """docs/training.md, "Babble from the clip's own corpus" compares it with the default's
    runs of the same seeds: where the babble comes from is the one difference."""
    default = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90.toml"))
    babble = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90_samebabble.toml"))
    assert (default.augment.babble_same_corpus, babble.augment.babble_same_corpus) == (False, True)
    assert replace(babble, augment=default.augment) == default


def test_the_more_babble_experiment_differs_from_the_default_only_in_its_noise_mix() -> None:
    """docs/training.md, "More babble in training" pairs it with the default's runs of the
    same seed: the share of noisy clips and the share of babble among them are the change."""
    default = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90.toml"))
    more = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90_morebabble.toml"))
    assert more.augment.noise_kind_weights == (0.25, 0.25, 0.5)
    assert (default.augment.noise_probability, more.augment.noise_probability) == (0.6, 0.8)
    assert replace(more, augment=default.augment) == default


def test_the_babble20_experiment_differs_from_the_default_only_in_its_noise_mix_and_snrs() -> None:
    """docs/training.md, "Babble at the evaluated SNRs" pairs it with the default's runs of the
    same seed: the babble share and the SNR range are the change, the noisy share is not."""
    default = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90.toml"))
    babble20 = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90_babble20.toml"))
    assert babble20.augment.noise_kind_weights == (0.25, 0.25, 0.5)
    assert (default.augment.noise_snr_db, babble20.augment.noise_snr_db) == ((0, 30), (0, 20))
    assert babble20.augment.noise_probability == default.augment.noise_probability
    assert replace(babble20, augment=default.augment) == default


def test_the_both_layers_experiment_differs_from_the_default_only_in_its_tuned_layers() -> None:
    """docs/training.md, "Fine-tuning both kept layers" pairs it with the default's runs of the
    same seed: how many of the two kept encoder layers are fine-tuned is the only change."""
    default = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90.toml"))
    both = load_config(SPEC.with_name("whisper_l2_noisy_servecrop_q90_tune2.toml"))
    assert both.model.whisper_layers == default.model.whisper_layers == 2
    assert (default.model.whisper_trainable_layers, both.model.whisper_trainable_layers) == (1, 2)
    assert replace(both, model=default.model) == default
