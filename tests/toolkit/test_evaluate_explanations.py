"""The explanation evaluation command on a tiny model and a few held-out clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.onnx_factory import TinyModelSpec, build_model
from toolkit.evaluate_explanations import DELETION_FRACTIONS, held_out_speakers, main
from toolkit.folds import Fold, save_folds

FOLDS = [
    Fold(("ravdess/01",), ("ravdess/03",), ("ravdess/02", "ravdess/04")),
    Fold(("ravdess/02",), ("ravdess/03",), ("ravdess/01", "ravdess/04")),
]


def packaged(tmp_path: Path, run: str) -> Path:
    model_dir = build_model(tmp_path / "models", TinyModelSpec(name="tiny", version="1.0.0"))
    save_folds(FOLDS, model_dir / "folds.json")
    (model_dir / "results.json").write_text(json.dumps({"shipped": {"run": run}}))
    return model_dir


def test_held_out_speakers_follow_the_shipped_run(tmp_path: Path) -> None:
    assert held_out_speakers(packaged(tmp_path / "a", "fold1")) == ["ravdess/02"]
    assert held_out_speakers(packaged(tmp_path / "b", "final")) == ["ravdess/03"]
    with pytest.raises(ValueError, match="cross_x"):
        held_out_speakers(packaged(tmp_path / "c", "cross_x"))


def test_the_command_reports_both_curves_and_plausibility(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = packaged(tmp_path, "fold0")
    main(["--model", str(model_dir), "--max-clips", "4"])
    report = json.loads((model_dir / "explanations.json").read_text())
    assert report["held_out_speakers"] == ["ravdess/01"]
    assert report["clips"] + report["skipped_by_the_service"] == 4
    faithfulness = report["faithfulness"]
    assert faithfulness["fractions_deleted"] == list(DELETION_FRACTIONS)
    assert faithfulness["salient_curve_mean"][0] == pytest.approx(1.0)
    assert faithfulness["random_curve_mean"][0] == pytest.approx(1.0)
    assert len(faithfulness["salient_curve_mean"]) == len(DELETION_FRACTIONS)
    assert faithfulness["salient_area_mean"] > 0.0
    assert faithfulness["random_area_mean"] > 0.0
    plausibility = report["plausibility"]
    assert plausibility["correct_n"] + plausibility["wrong_n"] <= report["clips"]
    assert len(report["per_clip"]) == report["clips"]
    assert "written to" in capsys.readouterr().out
