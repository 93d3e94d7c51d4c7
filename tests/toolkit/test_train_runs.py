"""`toolkit train --resume` keeps finished runs; a run directory holds one recipe."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

import toolkit.train.experiment as experiment
from toolkit.train.config import TrainConfig
from toolkit.train.experiment import CONFIG_FILE, train_runs
from toolkit.train.loop import CHECKPOINT_FILE, HISTORY_FILE

EPOCHS = 3


class DataLoaded(Exception):
    """Raised instead of loading the corpora: training would have started."""


def _config() -> TrainConfig:
    config = TrainConfig()
    return replace(config, optim=replace(config.optim, epochs=EPOCHS))


def _run_dir(tmp_path: Path, config: TrainConfig, runs: dict[str, int]) -> Path:
    """A run directory of ``config`` whose runs finished the given number of epochs."""
    (tmp_path / CONFIG_FILE).write_text(json.dumps(asdict(config)))
    for name, epochs in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / CHECKPOINT_FILE).write_bytes(b"weights")
        history = [{"epoch": e} for e in range(epochs)]
        (tmp_path / name / HISTORY_FILE).write_text(json.dumps(history))
    return tmp_path


@pytest.fixture(autouse=True)
def no_corpora(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(corpora: object) -> None:
        raise DataLoaded(corpora)

    monkeypatch.setattr(experiment, "load_utterances", refuse)


def test_resume_keeps_the_runs_that_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run_dir(tmp_path, _config(), {"fold0": EPOCHS, "fold1": EPOCHS})
    train_runs(_config(), out, ["fold0", "fold1"], resume=True)
    assert "fold1: already trained (3 epochs), kept" in capsys.readouterr().out


def test_resume_trains_a_run_that_was_cut_off(tmp_path: Path) -> None:
    out = _run_dir(tmp_path, _config(), {"fold0": EPOCHS, "fold1": EPOCHS - 1})
    with pytest.raises(DataLoaded):
        train_runs(_config(), out, ["fold0", "fold1"], resume=True)


def test_without_resume_every_named_run_is_trained_again(tmp_path: Path) -> None:
    out = _run_dir(tmp_path, _config(), {"fold0": EPOCHS})
    with pytest.raises(DataLoaded):
        train_runs(_config(), out, ["fold0"])


def test_a_run_directory_of_another_recipe_is_refused(tmp_path: Path) -> None:
    out = _run_dir(tmp_path, _config(), {"fold0": EPOCHS})
    other = replace(_config(), optim=replace(_config().optim, learning_rate=0.5))
    with pytest.raises(SystemExit, match=r"another recipe \(differs in optim of"):
        train_runs(other, out, ["fold0"], resume=True)


def test_a_recipe_saved_before_the_export_table_existed_resumes(tmp_path: Path) -> None:
    out = _run_dir(tmp_path, _config(), {"fold0": EPOCHS})
    saved = json.loads((out / CONFIG_FILE).read_text())
    del saved["export"]  # run directories written before [export] was added
    (out / CONFIG_FILE).write_text(json.dumps(saved))
    train_runs(_config(), out, ["fold0"], resume=True)  # default int8 method: same recipe


def test_another_int8_method_is_another_recipe(tmp_path: Path) -> None:
    out = _run_dir(tmp_path, _config(), {"fold0": EPOCHS})
    dynamic = replace(_config(), export=replace(_config().export, int8_method="dynamic"))
    with pytest.raises(SystemExit, match="differs in export"):
        train_runs(dynamic, out, ["fold0"], resume=True)
