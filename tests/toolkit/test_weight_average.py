"""Stochastic weight averaging: the checkpoint is the mean of the epoch-end weights."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from tests.toolkit.test_fine_tuning import SPEAKERS, VALIDATION, _clips, _config
from toolkit.data.affect_norms import neutral_point
from toolkit.model.ser_model import ModelConfig, build_model
from toolkit.train.config import OptimConfig, load_config
from toolkit.train.experiment import corpus_labels, seeded_model_and_feeder
from toolkit.train.frozen import FrozenFeatureFeeder
from toolkit.train.loop import train_run
from toolkit.train.weight_average import WeightAverage

CONFIGS = Path(__file__).resolve().parents[2] / "toolkit" / "configs"


def _linear(weight: float) -> nn.Linear:
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(weight)
        layer.bias.fill_(0.1)
    return layer


def test_the_mean_of_three_snapshots_is_their_average_and_constants_stay_exact() -> None:
    average = WeightAverage(_linear(0.0))
    for weight in (1.0, 2.0, 6.0):
        average.add(_linear(weight))
    target = _linear(0.0)
    average.load_into(target)
    assert torch.allclose(target.weight, torch.full((1, 2), 3.0))
    assert torch.equal(target.bias, _linear(0.0).bias)  # 0.1 three times: exactly 0.1


def test_a_model_with_batch_norm_is_refused() -> None:
    with pytest.raises(ValueError, match="batch-norm"):
        WeightAverage(build_model(ModelConfig()))  # the compact network


def test_loading_before_any_snapshot_is_refused() -> None:
    with pytest.raises(ValueError, match="no weights"):
        WeightAverage(_linear(0.0)).load_into(_linear(0.0))


@pytest.mark.parametrize("start", [-1, 10, 11])
def test_an_averaging_start_outside_the_epochs_is_refused(start: int) -> None:
    with pytest.raises(ValueError, match="average_from_epoch"):
        OptimConfig(epochs=10, average_from_epoch=start)


def test_the_averaging_experiment_differs_from_the_default_only_in_its_checkpoint() -> None:
    """docs/training.md, "Averaged weights" pairs it with the default's runs of the same seed:
    the mean of epochs 5-9 instead of the best validation epoch is the only change."""
    default = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90.toml")
    averaged = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90_swa.toml")
    assert (default.optim.average_from_epoch, averaged.optim.average_from_epoch) == (None, 5)
    assert replace(averaged, optim=default.optim) == default


def test_a_run_saves_the_mean_of_the_weights_at_the_ends_of_the_averaged_epochs(
    tmp_path: Path,
) -> None:
    config = _config(tuned=1)
    config = replace(config, optim=replace(config.optim, epochs=3, average_from_epoch=1))
    train, validation = _clips(SPEAKERS, 4), _clips(VALIDATION, 2)
    model = build_model(config.model)
    feeder = FrozenFeatureFeeder(config, model, train, validation, config.data.frozen_views)
    epoch_ends: list[dict[str, Tensor]] = []

    def snapshot_after_each_epoch(message: str) -> None:
        if message.startswith("{"):  # the epoch's record, logged after its last step
            epoch_ends.append({k: v.clone() for k, v in model.state_dict().items()})

    labels = corpus_labels(train.utterances + validation.utterances)
    outcome = train_run(
        config,
        train,
        validation,
        labels,
        neutral_point(),
        tmp_path,
        snapshot_after_each_epoch,
        feeder,
        model,
    )
    saved = torch.load(outcome.checkpoint, weights_only=False)
    assert len(epoch_ends) == 3 and saved["epoch"] == outcome.best_epoch == 2
    last, before_last = epoch_ends[2], epoch_ends[1]
    trained = [k for k in saved["model_state"] if not torch.equal(before_last[k], last[k])]
    assert trained  # the averaged epochs moved the weights, so the mean is not either end
    for name, value in saved["model_state"].items():
        expected = (epoch_ends[1][name] + epoch_ends[2][name]) / 2
        assert torch.allclose(value, expected, atol=1e-7), name
        if name not in trained:
            assert torch.equal(value, epoch_ends[2][name]), name  # frozen: exactly kept


def test_averaging_changes_only_the_weights_kept_not_the_training(tmp_path: Path) -> None:
    """docs/training.md, "Averaged weights": both recipes train the same epochs, so the
    comparison isolates the choice of checkpoint."""
    base = _config(tuned=1)
    base = replace(base, optim=replace(base.optim, epochs=2))
    averaged = replace(base, optim=replace(base.optim, average_from_epoch=0))
    train, validation = _clips(SPEAKERS, 4), _clips(VALIDATION, 2)
    labels = corpus_labels(train.utterances + validation.utterances)
    records = []
    for name, config in (("best", base), ("mean", averaged)):
        model, feeder = seeded_model_and_feeder(config, train, validation)  # as toolkit train
        assert model is not None and feeder is not None
        logged: list[dict[str, object]] = []

        def keep_epoch_records(message: str, into: list[dict[str, object]] = logged) -> None:
            if message.startswith("{"):
                into.append({k: v for k, v in json.loads(message).items() if k != "seconds"})

        train_run(
            config,
            train,
            validation,
            labels,
            neutral_point(),
            tmp_path / name,
            keep_epoch_records,
            feeder,
            model,
        )
        records.append(logged)
    assert len(records[0]) == 2 and records[0] == records[1]
