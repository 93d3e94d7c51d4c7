"""The SER network: front end, compact backbone, FLAM pooling, heads."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from toolkit.model.compact import CompactBackbone, CompactConfig, count_macs
from toolkit.model.flam import masked_softmax
from toolkit.model.frontend import LogMelFrontend, valid_frame_count
from toolkit.model.ser_model import ModelConfig, OnnxSerModel, build_model


def _clips(seconds: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([int(s * 16_000) for s in seconds])
    waveform = 0.1 * torch.randn(len(seconds), int(lengths.max()), generator=generator)
    return waveform * (torch.arange(waveform.shape[1]) < lengths[:, None]), lengths


def test_mel_power_equals_torchaudio_melspectrogram() -> None:
    waveform, _ = _clips((1.0,))
    reference = torchaudio.transforms.MelSpectrogram(
        16_000, n_fft=400, hop_length=160, n_mels=64, center=False
    )(waveform)
    ours = LogMelFrontend().mel_power(waveform)
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, rtol=1e-4, atol=1e-5 * float(reference.max()))


def test_valid_frame_count_matches_unpadded_stft() -> None:
    lengths = torch.tensor([400, 559, 560, 16_000])
    assert valid_frame_count(lengths).tolist() == [1, 1, 2, 98]


def test_frontend_normalises_valid_frames_only() -> None:
    waveform, lengths = _clips((2.0, 1.0))
    features, mask = LogMelFrontend()(waveform, lengths)
    assert mask.sum(dim=1).tolist() == valid_frame_count(lengths).tolist()
    row = features[1][:, mask[1]]
    assert torch.allclose(row.mean(dim=1), torch.zeros(64), atol=1e-4)
    assert float(row.std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
    assert float(features[1][:, ~mask[1]].abs().max()) == 0.0


def test_padded_row_equals_clip_alone() -> None:
    model = OnnxSerModel(build_model(ModelConfig()).eval())
    waveform, lengths = _clips((3.0, 1.3))
    with torch.no_grad():
        batched = model(waveform, lengths)
        alone = model(waveform[1:, : int(lengths[1])], lengths[1:])
    for together, single in zip(batched, alone, strict=True):
        frames = single.shape[1]
        assert torch.allclose(together[1:, :frames], single, atol=1e-5)


def test_outputs_have_contract_shapes_and_ranges() -> None:
    model = OnnxSerModel(build_model(ModelConfig()).eval())
    waveform, lengths = _clips((2.0, 1.0))
    with torch.no_grad():
        logits, distribution, vad, octants, attention = model(waveform, lengths)
    assert logits.shape == (2, 9) and distribution.shape == (2, 9)
    assert vad.shape == (2, 3) and bool(((vad > 0) & (vad < 1)).all())
    assert octants.shape == (2, 8)
    assert torch.allclose(attention.sum(dim=1), torch.ones(2), atol=1e-5)
    frames_short = int((valid_frame_count(lengths[1:]) - 1) // 2 + 1)
    assert float(attention[1, frames_short:].abs().max()) == 0.0


def test_masked_softmax_ignores_masked_entries() -> None:
    scores = torch.tensor([[1.0, 2.0, 100.0]])
    weights = masked_softmax(scores, torch.tensor([[True, True, False]]), dim=-1)
    assert weights[0, 2] == 0.0
    assert torch.allclose(weights[0, :2], torch.softmax(torch.tensor([1.0, 2.0]), dim=0))


def test_compact_cost_is_far_below_distilhubert() -> None:
    macs = count_macs(CompactConfig(), log_mel_frames=298)
    # DistilHuBERT's wav2vec-2.0 wave CNN alone: ~2.4 G MACs per second of audio
    # (7 conv layers of 512 channels, Baevski et al. 2020) -> ~7 G for 3 s.
    assert 30e6 < macs < 7e9 / 20


def test_set_trainable_layers_freezes_early_layers() -> None:
    backbone = CompactBackbone()
    backbone.set_trainable_layers(1)
    assert not any(p.requires_grad for p in backbone.stem.parameters())
    assert all(p.requires_grad for p in backbone.blocks[-1].parameters())
    backbone.set_trainable_layers(-1)
    assert all(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize("pooling", ["flam_mean", "flam", "attentive", "mean"])
def test_pooling_variants_build_and_run(pooling: str) -> None:
    model = build_model(ModelConfig(pooling=pooling)).eval()
    waveform, lengths = _clips((1.0,))
    with torch.no_grad():
        outputs = model(waveform, lengths)
    assert outputs.embedding.shape == (1, 128)
