"""The clean-view consistency term: augmented views pulled towards the clean view's prediction."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.toolkit.test_fine_tuning import SPEAKERS, VALIDATION, _clips, _config
from toolkit.data.affect_norms import neutral_point
from toolkit.model.ser_model import build_model
from toolkit.train import losses
from toolkit.train.config import TrainConfig, load_config
from toolkit.train.experiment import corpus_labels
from toolkit.train.frozen import FrozenFeatureFeeder, pad_frames, pooled_outputs
from toolkit.train.loop import AuxiliaryModules, batch_targets, loss_terms, train_run

CONFIGS = Path(__file__).resolve().parents[2] / "toolkit" / "configs"


def _consistent(config: TrainConfig, weight: float = 1.0) -> TrainConfig:
    return replace(config, loss=replace(config.loss, consistency=weight))


def test_the_consistency_experiment_differs_from_the_default_only_in_its_term() -> None:
    """docs/training.md, "Consistency with the clean view" pairs it with the default's runs."""
    default = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90.toml")
    candidate = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90_consistency.toml")
    assert (default.loss.consistency, candidate.loss.consistency) == (0.0, 1.0)
    assert replace(candidate, loss=default.loss) == default


def test_the_term_is_refused_where_no_clean_view_is_cached() -> None:
    with pytest.raises(ValueError, match="compact backbone"):
        _consistent(TrainConfig())
    tuned = _config(tuned=1)
    with pytest.raises(ValueError, match="frozen_views is 1"):
        _consistent(replace(tuned, data=replace(tuned.data, frozen_views=1)))
    with pytest.raises(ValueError, match=r"loss\.consistency is -0\.5"):
        _consistent(tuned, weight=-0.5)


def test_the_loss_is_the_kl_on_rows_with_a_clean_target_only() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    same = torch.softmax(logits.detach(), dim=-1)
    assert float(losses.clean_consistency(logits, same, torch.tensor([True, True])).detach()) < 1e-6
    other = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    first_only = losses.clean_consistency(logits, other, torch.tensor([True, False]))
    expected = -float(torch.log_softmax(logits.detach(), dim=-1)[0, 2])  # KL to a one-hot
    assert float(first_only.detach()) == pytest.approx(expected, rel=1e-5)
    none = losses.clean_consistency(logits, other, torch.tensor([False, False]))
    none.backward()  # type: ignore[no-untyped-call]
    assert float(none) == 0.0 and logits.grad is not None


def _feeder(config: TrainConfig) -> tuple[FrozenFeatureFeeder, torch.nn.Module]:
    model = build_model(config.model)
    feeder = FrozenFeatureFeeder(
        config, model, _clips(SPEAKERS, 4), _clips(VALIDATION, 2), config.data.frozen_views
    )
    return feeder, model


def test_augmented_views_of_unmixed_clips_get_the_clean_views_eval_prediction() -> None:
    base = _config(tuned=1)
    feeder, model = _feeder(_consistent(replace(base, data=replace(base.data, frozen_views=3))))
    indices = np.arange(8)
    chosen = np.array([0, 1, 2, 1, 2, 1, 2, 0])
    examples = [feeder.views[v][i] for v, i in zip(chosen, indices, strict=True)]
    model.train()
    targeted_examples = feeder.with_clean_targets(model, indices, chosen, examples)  # type: ignore[arg-type]
    assert model.training  # the clean forward ran in eval mode and gave the mode back
    clean_frames, mask = pad_frames([feeder.frames[0][i] for i in indices])
    model.eval()
    with torch.no_grad():
        logits = pooled_outputs(model, clean_frames, mask).heads.logits  # type: ignore[arg-type]
    expected = torch.softmax(logits, dim=-1).numpy()
    targeted = 0
    for i, view, example in zip(indices, chosen, targeted_examples, strict=True):
        unmixed = np.allclose(example.acted, feeder.views[0][i].acted, atol=1e-6)
        if view == 0 or not unmixed:
            assert example.clean is None
            continue
        assert example.clean is not None
        assert np.allclose(example.clean, expected[i], atol=1e-5)
        targeted += 1
    assert targeted > 0
    targets = batch_targets(targeted_examples, neutral_point())
    assert targets.has_clean is not None and int(targets.has_clean.sum()) == targeted


def test_with_the_term_off_no_example_gets_a_clean_target_and_no_term_is_computed() -> None:
    config = _config(tuned=1)
    feeder, model = _feeder(config)
    model.train()
    outputs, examples = feeder.train_batch(model, np.arange(8))  # type: ignore[arg-type]
    assert all(e.clean is None for e in examples)
    targets = batch_targets(examples, neutral_point())
    assert targets.clean is None
    aux = AuxiliaryModules(config.model.embedding_dim)
    weights = torch.ones(8)
    assert "consistency" not in loss_terms(outputs, targets, aux, config, weights)


def test_a_run_with_the_term_trains_and_logs_it(tmp_path: Path) -> None:
    config = _consistent(_config(tuned=1))
    config = replace(config, optim=replace(config.optim, epochs=2))
    train, validation = _clips(SPEAKERS, 4), _clips(VALIDATION, 2)
    model = build_model(config.model)
    feeder = FrozenFeatureFeeder(config, model, train, validation, config.data.frozen_views)
    records: list[dict[str, dict[str, float]]] = []

    def keep(message: str) -> None:
        if message.startswith("{"):
            records.append(json.loads(message))

    labels = corpus_labels(train.utterances + validation.utterances)
    train_run(config, train, validation, labels, neutral_point(), tmp_path, keep, feeder, model)
    assert len(records) == 2
    assert all(r["train_loss"]["consistency"] >= 0 for r in records)
    assert records[0]["train_loss"]["consistency"] > 0
