"""Losses, batching, augmentation, configuration and the fold plan."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from toolkit.augment.noise import mean_power
from toolkit.data import load_corpus, neutral_point
from toolkit.train import losses
from toolkit.train.augment import NOISE_KINDS, AugmentConfig, Augmenter
from toolkit.train.config import FoldConfig, load_config, parse_config
from toolkit.train.dataset import (
    SAMPLING_RATE_HZ,
    ClipSet,
    label_class_weights,
    load_clips,
    octant_class_weights,
    octant_targets,
    pad_batch,
    shuffled_batches,
)
from toolkit.train.plan import all_runs

REPO = Path(__file__).resolve().parents[2]


def test_soft_kl_is_zero_for_matching_distribution() -> None:
    target = torch.tensor([[0.7, 0.2, 0.1]])
    assert float(losses.soft_kl(target.log(), target)) == pytest.approx(0.0, abs=1e-6)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    one_hot = F.one_hot(labels, 3).float()
    assert float(losses.soft_focal(logits, one_hot, 0.0)) == pytest.approx(
        float(F.cross_entropy(logits, labels)), rel=1e-6
    )
    assert float(losses.soft_focal(logits, one_hot, 2.0)) < float(F.cross_entropy(logits, labels))


def test_supcon_matches_hand_computation() -> None:
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    value = losses.supervised_contrastive(features, labels, temperature=1.0)
    # anchors 0 and 1: positive similarity 1, negative 0 -> -log(e / (e + 1)); anchor 2 has none
    assert float(value) == pytest.approx(-math.log(math.e / (math.e + 1)), rel=1e-5)


def test_ccc_loss_zero_for_identical_and_two_for_negated() -> None:
    values = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9], [0.9, 0.1, 0.4]])
    assert float(losses.ccc_loss(values, values)) == pytest.approx(0.0, abs=1e-5)
    mirrored = 2.0 * values.mean(dim=0) - values  # same mean and variance, CCC -1
    assert float(losses.ccc_loss(mirrored, values)) == pytest.approx(2.0, abs=1e-4)


def test_octant_weight_falls_from_one_to_one_hundredth() -> None:
    assert losses.octant_weight(0, 1.0, 0.01, 10) == pytest.approx(1.0)
    assert losses.octant_weight(5, 1.0, 0.01, 10) == pytest.approx(0.1)
    assert losses.octant_weight(10, 1.0, 0.01, 10) == pytest.approx(0.01)
    assert losses.octant_weight(30, 1.0, 0.01, 10) == pytest.approx(0.01)


def test_octant_cross_entropy_ignores_neutral_rows() -> None:
    logits = torch.zeros(2, 8)
    value = losses.octant_cross_entropy(logits, torch.tensor([-1, 3]), torch.ones(8))
    assert float(value) == pytest.approx(math.log(8), rel=1e-6)


def test_center_loss_zero_at_centres() -> None:
    center = losses.CenterLoss(3, 2)
    with torch.no_grad():
        center.centres.copy_(torch.tensor([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]]))
    assert float(center(torch.tensor([[2.0, 0.0]]), torch.tensor([1]))) == 0.0
    assert float(center(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))) == pytest.approx(2.0)


def test_shuffled_batches_cover_every_index_once() -> None:
    batches = shuffled_batches(100, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    assert max(len(b) for b in batches) == 16


def test_pad_batch_pads_with_zeros() -> None:
    batch, lengths = pad_batch([np.ones(3, np.float32), np.ones(5, np.float32)])
    assert batch.shape == (2, 5) and lengths.tolist() == [3, 5]
    assert float(batch[0, 3:].abs().sum()) == 0.0


def test_default_config_loads_with_overrides() -> None:
    config = load_config(
        REPO / "toolkit/configs/compact.toml", ["optim.epochs=3", "model.pooling='mean'"]
    )
    assert config.optim.epochs == 3 and config.model.pooling == "mean"
    assert config.model.compact.stem_channels == (16, 32, 48)
    with pytest.raises(ValueError, match="unknown keys"):
        load_config(REPO / "toolkit/configs/compact.toml", ["optim.epoch=3"])


def test_calibration_speakers_default_to_out_of_fold_and_reject_unknown_values() -> None:
    # A run directory's config.json written before [calibration] existed reads the default.
    assert parse_config({}).calibration.speakers == "out_of_fold"
    default = load_config(REPO / "toolkit/configs/compact.toml")
    assert default.calibration.speakers == "out_of_fold"
    chosen = load_config(
        REPO / "toolkit/configs/compact.toml", ["calibration.speakers='validation'"]
    )
    assert chosen.calibration.speakers == "validation"
    with pytest.raises(ValueError, match=r"calibration\.speakers is 'test'"):
        load_config(REPO / "toolkit/configs/compact.toml", ["calibration.speakers='test'"])


def test_plan_tests_every_speaker_once_and_never_trains_on_it() -> None:
    utterances = load_corpus("ravdess") + load_corpus("emodb")
    plan = all_runs(utterances, FoldConfig())
    folds = [run for name, run in plan.items() if name.startswith("fold")]
    tested = [k for run in folds for k in run.test_speakers]
    assert sorted(tested) == sorted({u.speaker_key for u in utterances})
    for run in plan.values():
        roles = [set(run.train_speakers), set(run.validation_speakers), set(run.test_speakers)]
        assert not (roles[0] & roles[1]) and not (roles[0] & roles[2]) and not (roles[1] & roles[2])
    assert sum(k.startswith("ravdess") for k in folds[0].test_speakers) == 4
    assert sum(k.startswith("emodb") for k in folds[0].test_speakers) == 2
    cross = plan["cross_ravdess_to_emodb"]
    assert all(k.startswith("ravdess") for k in cross.train_speakers)
    assert len(cross.test_speakers) == 8


def test_augmenter_keeps_targets_valid() -> None:
    emodb = load_corpus("emodb")
    utterances = [u for u in emodb if u.speaker == "03"][:6] + [
        u for u in emodb if u.speaker == "08"
    ][:6]
    neutral = neutral_point()
    clips = load_clips(utterances, 32_000, neutral)
    config = AugmentConfig(eam_probability=1.0, noise_probability=1.0, speed_probability=1.0)
    augmenter = Augmenter(config, clips, seed=0)
    for index in range(len(clips)):
        example = augmenter.example(index)
        assert example.acted.sum() == pytest.approx(1.0, abs=1e-5)
        assert example.soft.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.all((example.affect >= 0) & (example.affect <= 1))
        assert np.abs(example.waveform).max() <= 1.0
        assert (
            abs(example.waveform.size - clips.waveforms[index].size)
            <= clips.waveforms[index].size / 9 + 1
        )


def _emodb_clips(count: int) -> ClipSet:
    utterances = [u for u in load_corpus("emodb") if u.speaker == "03"][:count]
    return load_clips(utterances, 32_000, neutral_point())


def test_silence_augmentation_pads_both_sides_under_a_quiet_floor() -> None:
    clips = _emodb_clips(4)
    config = AugmentConfig(
        eam_probability=0.0,
        noise_probability=0.0,
        speed_probability=0.0,
        gain_db=(0.0, 0.0),
        silence_probability=1.0,
        silence_s=(0.5, 1.0),
        silence_floor_snr_db=(40.0, 40.0),
    )
    augmenter = Augmenter(config, clips, seed=0)
    for index in range(len(clips)):
        original = clips.waveforms[index][: int(config.crop_s * SAMPLING_RATE_HZ)]
        padded = augmenter.example(index).waveform
        added_s = (padded.size - original.size) / SAMPLING_RATE_HZ
        assert 1.0 <= added_s <= 2.0
        edge = padded[: int(0.5 * SAMPLING_RATE_HZ)]
        floor_db = 10 * math.log10(mean_power(edge) / mean_power(original))
        # the floor covers the whole padded clip at 40 dB below it, so the edges sit near -40
        # dB of the speech (a little higher: the padded clip's mean power is the lower one)
        assert -45.0 < floor_db < -35.0


def test_silence_augmentation_off_draws_nothing() -> None:
    """Recipes without it (every shipped model's) must draw the same random numbers as
    before the option existed, or ``make reproduce`` would train other weights."""
    augmenter = Augmenter(AugmentConfig(), _emodb_clips(2), seed=0)
    state = augmenter.rng.bit_generator.state
    assert augmenter._draw_silence() is False
    assert augmenter.rng.bit_generator.state == state


def _clips_of(speakers: dict[str, tuple[str, ...]], per_speaker: int) -> ClipSet:
    """``per_speaker`` clips of each listed speaker, corpus -> speaker ids."""
    utterances = [
        u
        for corpus, ids in speakers.items()
        for speaker in ids
        for u in [v for v in load_corpus(corpus) if v.speaker == speaker][:per_speaker]
    ]
    return load_clips(utterances, 32_000, neutral_point())


def test_same_corpus_babble_draws_other_speakers_of_the_clips_corpus_only() -> None:
    clips = _clips_of({"emodb": ("03", "08"), "ravdess": ("01", "02")}, 2)
    corpus_of = [u.corpus for u in clips.utterances]
    speaker_of = [u.speaker_key for u in clips.utterances]
    every = Augmenter(AugmentConfig(), clips, seed=0)
    same = Augmenter(AugmentConfig(babble_same_corpus=True), clips, seed=0)
    for index in range(len(clips)):
        others = {i for i in range(len(clips)) if speaker_of[i] != speaker_of[index]}
        assert set(every.babble_candidates(index).tolist()) == others
        assert set(same.babble_candidates(index).tolist()) == {
            i for i in others if corpus_of[i] == corpus_of[index]
        }


def test_same_corpus_babble_changes_nothing_with_one_training_corpus() -> None:
    """Cross-corpus runs train on one corpus: their examples (and so their weights) must be
    the default recipe's, which is why the experiment retrains only the folds."""
    clips = _clips_of({"emodb": ("03", "08", "09")}, 2)
    noisy = AugmentConfig(noise_probability=1.0)
    every = Augmenter(noisy, clips, seed=3)
    same = Augmenter(replace(noisy, babble_same_corpus=True), clips, seed=3)
    for index in list(range(len(clips))) * 4:
        np.testing.assert_array_equal(every.example(index).waveform, same.example(index).waveform)
    assert every.rng.bit_generator.state == same.rng.bit_generator.state


def test_equal_noise_kinds_draw_the_random_numbers_they_drew_before_the_option() -> None:
    """Without ``noise_kind_weights`` the kind is ``rng.integers(3)`` as it always was, so the
    default recipe (and every shipped model's) trains the same weights."""
    clips = _clips_of({"emodb": ("03", "08")}, 1)
    augmenter = Augmenter(AugmentConfig(), clips, seed=7)
    reference = np.random.default_rng(7)
    drawn = [augmenter._noise_kind() for _ in range(50)]
    assert drawn == [int(reference.integers(3)) for _ in range(50)]


def test_noise_kind_weights_set_the_share_of_each_noise() -> None:
    clips = _clips_of({"emodb": ("03", "08")}, 1)
    babble_only = Augmenter(AugmentConfig(noise_kind_weights=(0.0, 0.0, 1.0)), clips, seed=1)
    assert {babble_only._noise_kind() for _ in range(200)} == {NOISE_KINDS.index("babble")}
    more = Augmenter(AugmentConfig(noise_kind_weights=(0.25, 0.25, 0.5)), clips, seed=2)
    counts = np.bincount([more._noise_kind() for _ in range(4000)], minlength=3) / 4000
    np.testing.assert_allclose(counts, [0.25, 0.25, 0.5], atol=0.03)


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.5, 0.6, -0.1), (0.2, 0.2, 0.2)])
def test_noise_kind_weights_must_be_three_shares_summing_to_one(
    weights: tuple[float, ...],
) -> None:
    with pytest.raises(ValueError, match="white, pink, babble summing to 1"):
        AugmentConfig(noise_kind_weights=weights)  # type: ignore[arg-type]


def test_octant_targets_mark_neutral_point() -> None:
    neutral = neutral_point()
    affect = np.array([neutral, (0.9, 0.9, 0.9)])
    assert octant_targets(affect, neutral).tolist() == [-1, 0]


def test_octant_class_weights_absent_octants_get_one() -> None:
    weights = octant_class_weights(np.array([0, 0, 0, 3, -1]))
    assert weights[0] == pytest.approx(0.5) and weights[3] == pytest.approx(1.5)
    assert weights[[1, 2, 4, 5, 6, 7]].tolist() == [1.0] * 6


def test_label_class_weights_balance_totals() -> None:
    labels = np.array([0, 0, 0, 1])
    weights = label_class_weights(labels)
    assert weights[0] * 3 == pytest.approx(weights[1] * 1)
    assert weights[2:].tolist() == [1.0] * 7


def test_class_weighted_kl_emphasises_rare_class() -> None:
    logits = torch.zeros(2, 3)
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    logits[0, 0] = 5.0  # sample 0 right, sample 1 wrong
    plain = losses.soft_kl(logits, target)
    weighted = losses.soft_kl(logits, target, torch.tensor([1.0, 3.0, 1.0]))
    assert float(weighted) > float(plain)
