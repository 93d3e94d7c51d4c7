"""A run's weights depend on the seed and its own speakers only, not on the runs trained
before it in the same process: `make train` trains `final` after the five folds, a
reproduction (`toolkit train --runs final`) trains it alone, and both must give the same bytes
(docs/training.md, "Reproducing the shipped model")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

import toolkit.train.experiment as experiment
from toolkit.data.types import Utterance
from toolkit.train.experiment import train_runs
from toolkit.train.loop import CHECKPOINT_FILE
from toolkit.train.smoke import smoke_config

CLIPS_PER_SPEAKER = 3  # every speaker stays, so the real fold plan applies


_LOAD_EVERY_UTTERANCE = experiment.load_utterances


def _few_clips_of_every_speaker(corpora: Sequence[str]) -> list[Utterance]:
    every = _LOAD_EVERY_UTTERANCE(corpora)
    speakers = sorted({u.speaker_key for u in every})
    return [
        u
        for s in speakers
        for u in [v for v in every if v.speaker_key == s][::20][:CLIPS_PER_SPEAKER]
    ]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    weights: dict[str, torch.Tensor] = state["model_state"]
    return weights


@pytest.mark.slow
def test_a_run_trains_the_same_weights_whatever_ran_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiment, "load_utterances", _few_clips_of_every_speaker)
    config = smoke_config()
    train_runs(config, tmp_path / "after_folds", ["fold0", "fold4", "final"])
    train_runs(config, tmp_path / "alone", ["final"])
    after, alone = (
        _weights(tmp_path / "after_folds" / "final"),
        _weights(tmp_path / "alone" / "final"),
    )
    assert after.keys() == alone.keys()
    differing = [name for name in after if not torch.equal(after[name], alone[name])]
    assert not differing, f"weights differ with the runs trained before: {differing[:5]}"
    fold0 = _weights(tmp_path / "after_folds" / "fold0")
    assert any(not torch.equal(fold0[name], alone[name]) for name in alone)  # runs do differ
