"""The seed-spread table: each seed's run gets its own seed and directory, and the table reports
what was measured (mean, sample sd, range) and nothing for seeds not run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

import toolkit.seed_spread as seed_spread_module
from service.inference.manifest import read_manifest
from tests.shipped_models import shipped_default_dir
from toolkit.ablation import Variant
from toolkit.card import render_card
from toolkit.cli import build_parser
from toolkit.seed_spread import record_in_model_dir, seed_spread, spread
from toolkit.train.config import load_config

REPO = Path(__file__).resolve().parents[2]
NOISY = REPO / "toolkit" / "configs" / "whisper_l2_noisy.toml"


def _fake_results(run_dir: Path, e_to_r_fp32: float, e_to_r_int8: float) -> None:
    run_dir.mkdir(parents=True)
    results = {
        "fp32": {"cross_corpus": {"emodb_to_ravdess": {"ua": e_to_r_fp32}}},
        "int8": {"cross_corpus": {"emodb_to_ravdess": {"ua": e_to_r_int8}}},
    }
    (run_dir / "results.json").write_text(json.dumps(results))


def test_spread_is_the_sample_standard_deviation() -> None:
    summary = spread([0.30, 0.40, 0.50])
    assert summary["mean"] == pytest.approx(0.40)
    assert summary["sd"] == pytest.approx(0.10)  # n - 1 in the denominator
    assert (summary["min"], summary["max"]) == (0.30, 0.50)
    assert spread([0.42])["sd"] == 0.0


def test_table_lists_measured_seeds_only(tmp_path: Path) -> None:
    _fake_results(tmp_path / "whisper_l2_noisy_seed0", 0.386, 0.386)
    _fake_results(tmp_path / "whisper_l2_noisy_seed2", 0.460, 0.452)
    markdown = seed_spread([NOISY], [0, 1, 2], tmp_path, table_only=True).read_text()
    int8_line = next(line for line in markdown.splitlines() if "| int8 |" in line)
    cells = [c.strip() for c in int8_line.strip("|").split("|")]
    assert cells[:6] == ["whisper_l2_noisy", "emodb_to_ravdess", "int8", "38.6 %", "n/a", "45.2 %"]
    assert cells[6] == "41.9 %"  # mean of the two measured seeds, not of three
    assert cells[8] == "38.6 % - 45.2 %"
    document = json.loads((tmp_path / "seeds.json").read_text())
    assert document["rows"][0]["spread"]["fp32"]["max"] == pytest.approx(0.460)
    assert document["rows"][0]["ua_by_variant"]["int8"] == {"0": 0.386, "2": 0.452}


def test_record_puts_the_spread_in_the_model_card(tmp_path: Path) -> None:
    shipped = shipped_default_dir()
    model_dir = tmp_path / "model"
    shutil.copytree(shipped, model_dir)
    runs = tmp_path / "runs"
    _fake_results(runs / "whisper_l2_noisy_seed0", 0.389, 0.386)
    _fake_results(runs / "whisper_l2_noisy_seed1", 0.323, 0.330)
    seed_spread([NOISY], [0, 1], runs, table_only=True)
    document = json.loads((runs / "seeds.json").read_text())
    card = record_in_model_dir(model_dir, document).read_text()
    assert "## Run-to-run spread (training seed)" in card
    assert "| whisper_l2_noisy | emodb_to_ravdess | int8 | 38.6 % | 33.0 % | 35.8 % |" in card
    results = json.loads((model_dir / "results.json").read_text())
    assert results["seed_spread"]["seeds"] == [0, 1]
    manifest = read_manifest(model_dir)
    assert render_card(manifest, results) == card


def test_each_seed_trains_in_its_own_directory_with_its_own_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[tuple[str, ...], Sequence[str], Path]] = []

    def record(variant: Variant, runs: Sequence[str], out_dir: Path) -> dict[str, object]:
        assert load_config(variant.config, list(variant.overrides)).optim.seed == int(
            out_dir.name.rsplit("seed", 1)[1]
        )
        calls.append((variant.overrides, runs, out_dir))
        return {}

    monkeypatch.setattr(seed_spread_module, "run_variant", record)
    seed_spread([NOISY], [1, 3], tmp_path)
    assert [c[2].name for c in calls] == ["whisper_l2_noisy_seed1", "whisper_l2_noisy_seed3"]
    assert {tuple(c[1]) for c in calls} == {("cross_emodb_to_ravdess",)}


def test_cli_defaults_compare_the_two_whisper_recipes() -> None:
    args = build_parser().parse_args(["seeds"])
    assert args.configs.split(",") == [
        "toolkit/configs/whisper_l2_noisy.toml",
        "toolkit/configs/whisper_l2.toml",
    ]
    assert args.seeds == "0,1,2,3"
    assert all((REPO / c).is_file() for c in args.configs.split(","))
