"""CI smoke run, and consistency of the shipped models (sha256, card figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.inference.manifest import read_manifest
from toolkit.card import CARD_FILE, render_card
from toolkit.export import sha256_of

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
SHIPPED = sorted(p.parent for p in MODELS_DIR.glob("*/*/manifest.json"))


@pytest.mark.slow
def test_smoke_trains_exports_and_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.train.smoke import run_smoke

    diffs = run_smoke(tmp_path)
    assert max(diffs.values()) <= 1e-4
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.int8.onnx").is_file()
    _check_reproduction(tmp_path)
    _check_int8_comparison(tmp_path / "again", monkeypatch)


def _check_int8_comparison(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`toolkit compare-int8` measures fp32 and both int8 methods of a trained run on its test
    speakers, clean and noisy (a few clips of 6 speakers stand in for the corpora)."""
    import toolkit.compare_int8 as compare
    from toolkit.train.experiment import PLAN_FILE, load_utterances
    from toolkit.train.smoke import SMOKE_SPEAKERS, smoke_config

    config = smoke_config()
    test_speakers = ("ravdess/04", "emodb/10")
    every = load_utterances(config.data.corpora)
    speakers = SMOKE_SPEAKERS + test_speakers
    few = [u for s in speakers for u in [v for v in every if v.speaker_key == s][::6]]
    monkeypatch.setattr(compare, "load_utterances", lambda corpora: few)
    plan = {"name": "run", "train_speakers": SMOKE_SPEAKERS, "validation_speakers": []}
    (run_dir / PLAN_FILE).write_text(json.dumps({"run": plan | {"test_speakers": test_speakers}}))
    report = compare.compare_int8(run_dir, ["run"], run_dir / "int8.json")
    assert set(report["graphs"]) == {"fp32", "int8-static", "int8-dynamic", "int8-dynamic_matmul"}
    for row in report["graphs"].values():
        assert set(row["ua"]) == {"clean", "white_10dB", "babble_10dB"}
        assert set(row["ua"]["clean"]) == {"ravdess", "emodb"}
        assert all(0.0 <= ua <= 1.0 for by in row["ua"].values() for ua in by.values())
    sizes = {graph: row["file_mib"] for graph, row in report["graphs"].items()}
    assert sizes["int8-static"] < sizes["fp32"] and sizes["int8-dynamic"] < sizes["fp32"]
    assert json.loads((run_dir / "int8.json").read_text()) == report
    _check_a_changed_int8_method_remakes_the_graph(run_dir / "run")


def _check_a_changed_int8_method_remakes_the_graph(run: Path) -> None:
    """`toolkit evaluate` remakes an int8 graph made with another method than the recipe's,
    and drops only that graph's cached predictions."""
    from toolkit.evaluate import PREDICTIONS_FILE, ensure_onnx
    from toolkit.export import int8_method_of
    from toolkit.train.dataset import ClipSet

    cache = run / PREDICTIONS_FILE
    arrays = {"fp32/test/clean|logits": np.ones(2), "int8/test/clean|logits": np.zeros(2)}
    np.savez_compressed(cache, **arrays)  # type: ignore[arg-type]
    assert int8_method_of(run / "model.int8.onnx") == "static"
    no_clips = ClipSet([], [], np.zeros((0, 9)), np.zeros((0, 9)), np.zeros((0, 3)))
    paths = ensure_onnx(run, no_clips, "dynamic")  # dynamic needs no calibration clips
    assert int8_method_of(paths["int8"]) == "dynamic"
    assert list(np.load(cache)) == ["fp32/test/clean|logits"]


def _check_reproduction(smoke_dir: Path) -> None:
    """The same seed retrains the same weights, and `toolkit reproduce` says so; another
    model is told apart."""
    from toolkit.reproduce import compare_with_shipped, head_differences
    from toolkit.train.smoke import run_smoke

    again = smoke_dir / "again"
    run_smoke(again)
    report = compare_with_shipped(again, "run", smoke_dir)
    assert report["identical_file"]
    assert max(report["max_abs_difference"].values()) == 0.0
    assert report["environment_retrained"]["torch_threads"] == 1  # recorded with the run
    other = sorted(SHIPPED)[0] / "model.onnx"
    clips = [np.linspace(-0.5, 0.5, 24_000, dtype=np.float32)]
    assert max(head_differences(smoke_dir / "model.onnx", other, clips).values()) > 1e-3
    _check_int8_reproduction(smoke_dir, again)


def _check_int8_reproduction(smoke_dir: Path, again: Path) -> None:
    """A shipped int8 model is compared with the retrained graph quantised the same way."""
    from service.inference.manifest import write_manifest
    from toolkit.data import load_corpus
    from toolkit.export import quantise_int8
    from toolkit.reproduce import compare_with_shipped
    from toolkit.train.dataset import read_waveform

    calibration = [read_waveform(u, 16_000 * 3) for u in load_corpus("ravdess")[:4]]
    shipped = smoke_dir / "shipped-int8"
    shipped.mkdir()
    graph = quantise_int8(smoke_dir / "model.onnx", shipped / "model.onnx", calibration)
    manifest = read_manifest(smoke_dir).model_copy(update={"sha256": sha256_of(graph)})
    write_manifest(manifest, shipped)
    (shipped / "results.json").write_text(json.dumps({"shipped": {"variant": "int8"}}))
    report = compare_with_shipped(again, "run", shipped, calibration=calibration)
    assert report["variant"] == "int8" and report["identical_file"]
    fp32 = compare_with_shipped(again, "run", smoke_dir)
    assert fp32["variant"] == "fp32" and fp32["sha256_retrained"] != report["sha256_retrained"]
    _check_dynamic_int8_reproduction(smoke_dir, again)


def _check_dynamic_int8_reproduction(smoke_dir: Path, again: Path) -> None:
    """The run directory's recipe, not the checkpoint's, names the int8 method: a recipe
    saying ``dynamic`` reproduces a shipped dynamic graph (without calibration clips)."""
    from service.inference.manifest import write_manifest
    from toolkit.export import quantise_int8
    from toolkit.reproduce import compare_with_shipped
    from toolkit.train.experiment import CONFIG_FILE

    recipe_path = again / CONFIG_FILE
    saved = recipe_path.read_text()
    recipe = json.loads(saved)
    recipe["export"] = {"int8_method": "dynamic"}
    recipe_path.write_text(json.dumps(recipe))
    shipped = smoke_dir / "shipped-int8-dynamic"
    shipped.mkdir()
    graph = quantise_int8(smoke_dir / "model.onnx", shipped / "model.onnx", [], "dynamic")
    manifest = read_manifest(smoke_dir).model_copy(update={"sha256": sha256_of(graph)})
    write_manifest(manifest, shipped)
    (shipped / "results.json").write_text(json.dumps({"shipped": {"variant": "int8"}}))
    try:
        assert compare_with_shipped(again, "run", shipped)["identical_file"]
    finally:
        recipe_path.write_text(saved)


def test_a_model_is_shipped() -> None:
    assert SHIPPED, "no models/<name>/<version>/manifest.json"


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_sha256_matches_file(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    assert sha256_of(model_dir / manifest.file) == manifest.sha256


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_card_figures_equal_results_json(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    results = json.loads((model_dir / "results.json").read_text())
    card = (model_dir / CARD_FILE).read_text(encoding="utf-8")
    assert card == render_card(manifest, results)


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_metrics_come_from_results(model_dir: Path) -> None:
    from toolkit.package import headline_metrics

    manifest = read_manifest(model_dir)
    results = json.loads((model_dir / "results.json").read_text())
    assert manifest.metrics == headline_metrics(results, results["shipped"]["variant"])
    assert (model_dir / "folds.json").is_file()
    assert (model_dir / manifest.file).stat().st_size <= 25 * 2**20


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_calibration_is_the_shipped_runs(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    results = json.loads((model_dir / "results.json").read_text())
    fitted = results["calibration_per_run"][results["shipped"]["run"]]
    assert manifest.heads.categorical.temperature == fitted["temperature"]
    assert manifest.heads.distribution.temperature == fitted["distribution_temperature"]
    assert manifest.uncertainty.abstain_threshold == min(1.0, fitted["abstain_threshold"])


def test_the_default_model_is_calibrated_out_of_fold() -> None:
    """Its temperature comes from every fold's test speakers, not 3 validation speakers
    (docs/training.md, "Calibration"); evaluating run ``final`` alone would lose that."""
    from service.inference.registry import shipped_default

    default_name = shipped_default(MODELS_DIR)
    assert default_name is not None
    for model_dir in (MODELS_DIR / default_name).iterdir():
        results = json.loads((model_dir / "results.json").read_text())
        fitted = results["calibration_per_run"][results["shipped"]["run"]]
        assert fitted["fitted_on"] == "test speakers of fold0, fold1, fold2, fold3, fold4"


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_carries_training_cue_norms(model_dir: Path) -> None:
    from service.explain import CUE_UNITS

    norms = read_manifest(model_dir).cue_norms
    assert {"female", "male", "pooled"} <= set(norms)
    for group in ("female", "male"):
        measured = [cue for cue in CUE_UNITS if cue in norms[group]]
        assert len(measured) >= 8, f"{group}: only {measured}"
        assert all(norms[group][cue]["count"] >= 10 for cue in measured)


def test_card_states_a_recorded_reproduction_outcome() -> None:
    from toolkit.card import reproduction_lines

    assert reproduction_lines(None) == []
    same = {"identical_file": True, "max_abs_difference": {"logits": 0.0}}
    assert "byte for byte" in reproduction_lines(same)[0]
    environment = {"torch": "2.11.0", "machine": "x86_64", "cpu_capability": "AVX2"}
    same_with_environment = same | {"environment_retrained": environment | {"torch_threads": 1}}
    assert (
        "torch 2.11.0 on x86_64 with AVX2 kernels" in reproduction_lines(same_with_environment)[0]
    )
    moved = {"identical_file": False, "identical_graph": True, "max_abs_difference": {"vad": 0.0}}
    assert "directory it was exported from" in reproduction_lines(moved)[0]
    other = {"identical_file": False, "max_abs_difference": {"logits": 1.87, "vad": 0.27}}
    assert (
        "Not reproduced" in reproduction_lines(other)[0] and "1.87" in reproduction_lines(other)[0]
    )


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_targets_table_rounds_once_like_the_figure_tables(model_dir: Path) -> None:
    """The targets read the unrounded figures: the manifest's 4-decimal copy rounded again
    once printed 71.2 % beside a 71.1 % of the same UA."""
    from toolkit.card import headline_figures, pct, target_rows

    results = json.loads((model_dir / "results.json").read_text())
    block = results[results["shipped"]["variant"]]
    figures = headline_figures(results, results["shipped"]["variant"])
    rows = {row[0]: row[1] for row in target_rows(figures, block)}
    in_corpus = block["in_corpus"]
    assert rows["RAVDESS 6 shared classes UA"] == pct(in_corpus["ravdess"]["shared_labels"]["ua"])
    assert rows["EmoDB 7-class UA"] == pct(in_corpus["emodb"]["all_labels"]["ua"])
    ece = pct(block["calibration"]["ece_after"])
    assert rows["ECE after temperature scaling"] == ece
