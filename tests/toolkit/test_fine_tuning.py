"""Partial fine-tuning of the Whisper encoder on cached frozen-prefix frames."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.data.affect_norms import neutral_point
from toolkit.model.ser_model import ModelConfig, build_model
from toolkit.train.config import TrainConfig, load_config
from toolkit.train.dataset import ClipSet, load_clips, pad_batch
from toolkit.train.experiment import corpus_labels, load_utterances
from toolkit.train.frozen import FrozenFeatureFeeder, cacheable_backbone, pooled_outputs
from toolkit.train.loop import AuxiliaryModules, load_checkpoint, parameter_groups, train_run

CONFIGS = Path(__file__).resolve().parents[2] / "toolkit" / "configs"
SPEAKERS = ("ravdess/01", "emodb/03")
VALIDATION = ("ravdess/03", "emodb/09")


def _clips(speakers: tuple[str, ...], per_speaker: int) -> ClipSet:
    utterances = [u for u in load_utterances(["ravdess", "emodb"]) if u.speaker_key in speakers]
    chosen = [u for s in speakers for u in [v for v in utterances if v.speaker_key == s][::9]]
    by_speaker = [[u for u in chosen if u.speaker_key == s][:per_speaker] for s in speakers]
    return load_clips([u for group in by_speaker for u in group], 32_000, neutral_point())


def _config(tuned: int, scale: float = 0.1) -> TrainConfig:
    config = TrainConfig()
    return replace(
        config,
        data=replace(config.data, max_duration_s=2.0, frozen_views=2),
        model=replace(config.model, backbone="whisper_tiny", whisper_trainable_layers=tuned),
        optim=replace(
            config.optim,
            epochs=1,
            batch_size=4,
            warmup_epochs=0,
            backbone_learning_rate_scale=scale,
        ),
    )


def test_compact_backbone_has_nothing_to_cache() -> None:
    with pytest.raises(ValueError, match="no frozen prefix"):
        cacheable_backbone(build_model(ModelConfig()))


def test_a_trainable_prefix_is_refused() -> None:
    model = build_model(ModelConfig(backbone="whisper_tiny", whisper_trainable_layers=2))
    getattr(model.backbone, "unfreeze")()  # noqa: B009
    with pytest.raises(ValueError, match="no frozen prefix"):
        cacheable_backbone(model)


def test_backbone_parameters_get_their_own_learning_rate_scale() -> None:
    model = build_model(ModelConfig(backbone="whisper_tiny", whisper_trainable_layers=1))
    aux = AuxiliaryModules(model.config.embedding_dim)
    trainable = [p for p in [*model.parameters(), *aux.parameters()] if p.requires_grad]
    one = parameter_groups(model, aux, 1.0)
    assert len(one) == 1 and one[0]["params"] == trainable
    rest, backbone = parameter_groups(model, aux, 0.1)
    assert backbone["lr_scale"] == 0.1 and rest["lr_scale"] == 1.0
    tuned = {id(p) for p in model.backbone.parameters() if p.requires_grad}
    assert {id(p) for p in backbone["params"]} == tuned and len(tuned) > 0
    assert len(rest["params"]) + len(backbone["params"]) == len(trainable)


def test_fine_tuning_trains_the_top_layers_only_and_exports_whole(tmp_path: Path) -> None:
    config = _config(tuned=1)
    train, validation = _clips(SPEAKERS, 4), _clips(VALIDATION, 2)
    model = build_model(config.model)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    feeder = FrozenFeatureFeeder(config, model, train, validation, config.data.frozen_views)
    labels = corpus_labels(train.utterances + validation.utterances)
    outcome = train_run(
        config, train, validation, labels, neutral_point(), tmp_path, lambda _: None, feeder, model
    )
    after = model.backbone.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("layers.3.", "final_norm.")) for k in changed)
    reloaded, _, _ = load_checkpoint(outcome.checkpoint)
    waveform, lengths = pad_batch(validation.waveforms)
    with torch.no_grad():
        whole = reloaded(waveform, lengths).heads.logits
        hidden, valid = cacheable_backbone(reloaded).frozen_prefix(waveform, lengths)
        cached = pooled_outputs(reloaded, hidden, valid).heads.logits
    assert np.allclose(whole.numpy(), cached.numpy(), atol=1e-5)


def test_a_run_does_not_depend_on_the_random_state_left_by_earlier_runs() -> None:
    from toolkit.train.experiment import seeded_model_and_feeder

    config = _config(tuned=1)
    train, validation = _clips(SPEAKERS, 2), _clips(VALIDATION, 1)
    built = []
    for earlier_draws in (1, 1000):
        torch.rand(earlier_draws)  # what an earlier run in the same process would leave
        np.random.rand(earlier_draws)
        model, feeder = seeded_model_and_feeder(config, train, validation)
        assert model is not None and feeder is not None
        built.append((model.state_dict(), feeder.train_batch(model, np.arange(2))[0]))
    (first, first_out), (second, second_out) = built
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert torch.equal(first_out.heads.logits, second_out.heads.logits)


def test_the_more_views_experiment_differs_from_the_default_only_in_its_view_count() -> None:
    """docs/training.md, "More augmented views" pairs it with the default's runs."""
    default = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90.toml")
    candidate = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90_views10.toml")
    assert (default.data.frozen_views, candidate.data.frozen_views) == (5, 10)
    assert replace(candidate, data=default.data) == default


def test_more_views_keep_the_fewer_views_and_add_to_them() -> None:
    """The augmenter draws view after view, so a run with more views caches the same first
    ones (the experiment adds augmentations, it does not redraw them)."""
    train, validation = _clips(SPEAKERS, 3), _clips(VALIDATION, 1)
    config = _config(tuned=1)
    fewer, more = (
        FrozenFeatureFeeder(config, build_model(config.model), train, validation, views)
        for views in (2, 3)
    )
    assert len(more.views) == 3
    for kept, added in zip(fewer.views[1], more.views[1], strict=True):
        assert np.array_equal(kept.waveform, added.waveform)
        assert np.array_equal(kept.acted, added.acted)


def test_the_balanced_experiment_differs_from_the_default_only_in_its_loss_weights() -> None:
    """docs/training.md, "Class-balanced losses with the Whisper recipe" pairs it with the
    default's runs."""
    default = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90.toml")
    candidate = load_config(CONFIGS / "whisper_l2_noisy_servecrop_q90_balanced.toml")
    assert (default.loss.class_balanced, candidate.loss.class_balanced) == (False, True)
    assert replace(candidate, loss=default.loss) == default
