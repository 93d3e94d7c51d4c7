"""The recipe comparison: each run's figure, the mean per recipe, the difference of the means and
Welch's t, read from evaluated run directories; rows nobody measured are left out."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.inference.manifest import read_manifest
from tests.shipped_models import shipped_default_dir
from toolkit.card import render_card
from toolkit.cli import build_parser
from toolkit.compare_recipes import compare, markdown, paired_t, record_in_model_dir, welch_t

REPO = Path(__file__).resolve().parents[2]
SHIPPED_DEFAULT_DIR = shipped_default_dir()


def _evaluated_run(
    run_dir: Path, ravdess_ua: float, white_10db_ua: float, padded_ua: float, ece: float
) -> Path:
    block = {
        "in_corpus": {"ravdess": {"all_labels": {"ua": ravdess_ua}}},
        "noise_ua": {"white_10dB": {"ravdess": white_10db_ua}},
        "padded_ua": {"ravdess": padded_ua},
        "calibration": {"ece_after": ece},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps({"int8": block, "fp32": {}}))
    return run_dir


def _row(document: dict[str, Any], figure: str) -> dict[str, Any]:
    return next(r for r in document["rows"] if r["figure"] == figure)


def test_means_differences_and_points_below_clean(tmp_path: Path) -> None:
    a = [
        _evaluated_run(tmp_path / "a0", 0.60, 0.55, 0.50, 0.04),
        _evaluated_run(tmp_path / "a1", 0.70, 0.66, 0.62, 0.02),
    ]
    b = [
        _evaluated_run(tmp_path / "b0", 0.64, 0.60, 0.64, 0.01),
        _evaluated_run(tmp_path / "b1", 0.68, 0.62, 0.67, 0.03),
    ]
    document = compare({"base": a, "new": b})
    clean = _row(document, "RAVDESS UA, all classes")
    assert clean["recipes"]["base"]["mean"] == pytest.approx(0.65)
    assert clean["difference"] == pytest.approx(0.01)
    white = _row(document, "RAVDESS 10 dB white, points below clean")
    assert white["recipes"]["base"]["values"] == pytest.approx([-5.0, -4.0])
    assert white["recipes"]["new"]["mean"] == pytest.approx(-5.0)
    assert white["difference"] == pytest.approx(-0.5)
    figures = [r["figure"] for r in document["rows"]]
    assert "EmoDB UA, all classes" not in figures  # no run measured it
    table = markdown(document)
    assert (
        "| RAVDESS UA, all classes | 60.0 % / 70.0 %; **65.0 %** | "
        "64.0 % / 68.0 %; **66.0 %** | +1.0 |" in table
    )
    assert (
        "| ECE after temperature | 0.040 / 0.020; **0.030** | 0.010 / 0.030; **0.020** | -0.010 |"
        in table
    )


def test_welch_t_matches_the_textbook_formula() -> None:
    first, second = [0.30, 0.38, 0.46, 0.38], [0.42, 0.39, 0.42, 0.39]
    mean_1, mean_2 = sum(first) / 4, sum(second) / 4
    var_1 = sum((x - mean_1) ** 2 for x in first) / 3
    var_2 = sum((x - mean_2) ** 2 for x in second) / 3
    expected = (mean_2 - mean_1) / math.sqrt(var_1 / 4 + var_2 / 4)
    assert welch_t(first, second) == pytest.approx(expected)
    assert welch_t([0.4], second) is None  # one run: no spread to compare against
    assert welch_t([0.4, 0.4], [0.5, 0.5]) is None


def test_paired_t_compares_run_with_run() -> None:
    first, second = [0.30, 0.38, 0.46, None], [0.33, 0.40, 0.50, 0.90]
    differences = [0.03, 0.02, 0.04]  # the pair with a missing side is left out
    mean = sum(differences) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    assert paired_t(first, second) == pytest.approx(mean / (sd / math.sqrt(3)))
    assert paired_t([0.3, 0.4], [0.4, 0.5]) is None  # the same difference twice: no spread


def test_paired_comparison_reports_the_paired_t(tmp_path: Path) -> None:
    a = [_evaluated_run(tmp_path / f"a{i}", ua, 0.5, 0.4, 0.04) for i, ua in enumerate((0.6, 0.7))]
    b = [
        _evaluated_run(tmp_path / f"b{i}", ua, 0.5, 0.6, 0.04) for i, ua in enumerate((0.62, 0.73))
    ]
    document = compare({"whole": a, "cropped": b}, paired=True)
    clean = _row(document, "RAVDESS UA, all classes")
    assert "welch_t" not in clean
    assert clean["paired_t"] == pytest.approx(paired_t([0.6, 0.7], [0.62, 0.73]))
    table = markdown(document)
    assert "paired t" in table and "Welch" not in table
    with pytest.raises(SystemExit, match="as many run dirs"):
        compare({"whole": a, "cropped": b[:1]}, paired=True)
    c = [_evaluated_run(tmp_path / "c0", 0.5, 0.5, 0.4, 0.04), tmp_path / "c1"]
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "results.json").write_text(json.dumps({"int8": {}}))  # not measured
    half = _row(compare({"whole": a, "cropped": c}, paired=True), "RAVDESS UA, all classes")
    assert half["difference"] == pytest.approx(0.5 - 0.6), "only the complete pair counts"


def test_cross_corpus_rows_with_and_without_silence(tmp_path: Path) -> None:
    runs = []
    for i, (ua, padded) in enumerate(((0.40, 0.35), (0.44, 0.41))):
        run = tmp_path / f"er{i}"
        run.mkdir()
        block = {"cross_corpus": {"emodb_to_ravdess": {"ua": ua, "ua_padded": padded}}}
        (run / "results.json").write_text(json.dumps({"int8": block}))
        runs.append(run)
    document = compare({"cross": runs})
    assert [r["figure"] for r in document["rows"]] == [
        "cross-corpus EmoDB -> RAVDESS UA",
        "cross-corpus EmoDB -> RAVDESS UA, + 1 s silence each side",
    ]
    assert document["rows"][1]["recipes"]["cross"]["mean"] == pytest.approx(0.38)


def test_one_recipe_has_no_difference_column(tmp_path: Path) -> None:
    run = _evaluated_run(tmp_path / "a0", 0.60, 0.55, 0.50, 0.04)
    document = compare({"only": [run]})
    assert "difference" not in _row(document, "RAVDESS UA, all classes")
    assert "Welch" not in markdown(document)


def test_a_run_dir_not_evaluated_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "trained_only").mkdir()
    with pytest.raises(SystemExit, match=r"evaluate .*trained_only first"):
        compare({"base": [tmp_path / "trained_only"]})


def test_cli_rejects_a_recipe_without_run_dirs(tmp_path: Path) -> None:
    args = build_parser().parse_args(["compare-recipes", "--recipe", "base"])
    with pytest.raises(SystemExit, match="NAME=RUN_DIR"):
        args.handler(args)


def test_cli_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _evaluated_run(tmp_path / "a0", 0.60, 0.55, 0.50, 0.04)
    b = _evaluated_run(tmp_path / "b0", 0.64, 0.60, 0.64, 0.01)
    out = tmp_path / "compare.json"
    argv = ["compare-recipes", "--recipe", f"base={a}", "--recipe", f"new={b}", "--json", str(out)]
    args = build_parser().parse_args(argv)
    args.handler(args)
    assert "| RAVDESS UA, all classes |" in capsys.readouterr().out
    assert json.loads(out.read_text())["recipes"] == {"base": [str(a)], "new": [str(b)]}


def _padded_run(run_dir: Path, emodb_ua: float, emodb_padded_ua: float) -> Path:
    block = {
        "in_corpus": {"emodb": {"all_labels": {"ua": emodb_ua}}},
        "padded_ua": {"emodb": emodb_padded_ua},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps({"int8": block}))
    (run_dir / "fold0").mkdir()
    (run_dir / "fold0" / "environment.json").write_text(json.dumps({"processor": "AMD EPYC"}))
    return run_dir


def test_record_puts_the_comparison_and_the_silence_limitation_in_the_card(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_DEFAULT_DIR, model_dir)
    default = [_padded_run(tmp_path / f"d{s}", 0.74, 0.59 + s / 100) for s in (0, 1)]
    other = [_padded_run(tmp_path / f"o{s}", 0.72, 0.65) for s in (0, 1)]
    document = compare({"default": default, "silence": other})
    assert document["processors"] == {"default": ["AMD EPYC"], "silence": ["AMD EPYC"]}
    card = record_in_model_dir(model_dir, document).read_text()
    assert "## Recipe comparison over training seeds" in card
    assert "| EmoDB UA, all classes | 74.0 % / 74.0 %; **74.0 %** |" in card
    assert "retrained runs of this recipe lose 14.5 points (EmoDB) of UA" in card
    results = json.loads((model_dir / "results.json").read_text())
    assert results["recipe_comparison"]["recipes"]["default"] == [str(d) for d in default]
    assert render_card(read_manifest(model_dir), results) == card


def test_a_paired_record_gets_its_own_section_and_keeps_the_recipe_comparison(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_DEFAULT_DIR, model_dir)
    unpaired = [_padded_run(tmp_path / f"u{s}", 0.75, 0.61) for s in (0, 1)]
    record_in_model_dir(model_dir, compare({"default": unpaired, "other": unpaired}))
    before = json.loads((model_dir / "results.json").read_text())["recipe_comparison"]
    whole = [_padded_run(tmp_path / f"w{s}", 0.74, 0.60) for s in (0, 1)]
    cropped = [_padded_run(tmp_path / f"c{s}", 0.73, 0.72 + s / 100) for s in (0, 1)]
    cross = tmp_path / "cross"  # a cross-corpus run: no in-corpus figures
    cross.mkdir()
    block = {"cross_corpus": {"emodb_to_ravdess": {"ua": 0.40}}}
    (cross / "results.json").write_text(json.dumps({"int8": block}))
    document = compare({"whole": [*whole, cross], "cropped": [*cropped, cross]}, paired=True)
    card = record_in_model_dir(model_dir, document).read_text()
    results = json.loads((model_dir / "results.json").read_text())
    assert results["recipe_comparison"] == before and results["serving_comparison"]["paired"]
    assert "## Recipe comparison over training seeds" in card
    assert "## Served differently: cropped" in card
    assert "| cross-corpus EmoDB -> RAVDESS UA | 40.0 %; **40.0 %** |" in card, "no '-' cells"
    assert "| EmoDB UA, all classes | 74.0 % / 74.0 %; **74.0 %** | 73.0 % / 73.0 %;" in card
    assert render_card(read_manifest(model_dir), results) == card


def test_no_silence_line_when_the_recipe_does_not_lose_to_silence(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_DEFAULT_DIR, model_dir)
    robust = [_padded_run(tmp_path / "r0", 0.74, 0.745)]
    card = record_in_model_dir(model_dir, compare({"default": robust})).read_text()
    assert "## Recipe comparison over training seeds" in card
    assert "Silence around the utterance costs accuracy" not in card


def test_card_names_noise_conditions_where_a_retrained_run_missed_the_limit(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_DEFAULT_DIR, model_dir)
    runs = [
        _evaluated_run(tmp_path / "a0", 0.70, 0.58, 0.70, 0.03),  # 12 points below clean
        _evaluated_run(tmp_path / "a1", 0.70, 0.62, 0.70, 0.03),
    ]
    card = record_in_model_dir(model_dir, compare({"default": runs})).read_text()
    assert (
        "fall more than 10 points below clean at: RAVDESS 10 dB white (-12.0 / -8.0; mean -10.0)"
        in card
    )
    within = [_evaluated_run(tmp_path / "b0", 0.70, 0.65, 0.70, 0.03)]
    card = record_in_model_dir(model_dir, compare({"default": within})).read_text()
    assert "fall more than 10 points below clean" not in card


def test_without_a_recipe_comparison_the_limitations_read_the_serving_comparison(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_DEFAULT_DIR, model_dir)
    results_path = model_dir / "results.json"
    results = json.loads(results_path.read_text())
    results.pop("recipe_comparison", None)
    results.pop("serving_comparison", None)
    results_path.write_text(json.dumps(results))
    served = [_padded_run(tmp_path / f"s{s}", 0.74, 0.60) for s in (0, 1)]
    whole = [_padded_run(tmp_path / f"w{s}", 0.74, 0.50) for s in (0, 1)]
    document = compare({"served": served, "whole": whole}, paired=True)
    card = record_in_model_dir(model_dir, document).read_text()
    assert "## Recipe comparison over training seeds" not in card
    assert "## Served differently: whole" in card
    assert 'lose 14.0 points (EmoDB) of UA on average ("Served differently: whole")' in card


def test_the_silence_line_names_only_the_corpora_that_lose(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_DEFAULT_DIR, model_dir)
    run = tmp_path / "both"
    block = {
        "in_corpus": {c: {"all_labels": {"ua": 0.70}} for c in ("emodb", "ravdess")},
        "padded_ua": {"emodb": 0.55, "ravdess": 0.70},  # RAVDESS loses nothing
    }
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"int8": block}))
    card = record_in_model_dir(model_dir, compare({"default": [run]})).read_text()
    assert "retrained runs of this recipe lose 15.0 points (EmoDB) of UA on average" in card
    assert "(RAVDESS) of UA" not in card
