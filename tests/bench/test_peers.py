"""Peer export on a tiny wav2vec2-shaped model: ONNX Runtime (the service's session options)
matches PyTorch on a padded batch of real speech; the real peers have the published sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchaudio.models import wav2vec2_model

from bench.clips import read_speech
from bench.onnx_export import cached, export_speech_model
from bench.peers import OUTPUT_NAMES, PEERS, FramesGraph, build_peer
from service.inference.session import build_session
from service.pipeline import pad_batch
from tests.data_paths import ravdess_clip


def tiny_wav2vec2() -> FramesGraph:
    torch.manual_seed(0)
    model = wav2vec2_model(
        extractor_mode="group_norm",
        extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2), (16, 2, 2)],
        extractor_conv_bias=False,
        encoder_embed_dim=32,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=8,
        encoder_pos_conv_groups=4,
        encoder_num_layers=1,
        encoder_num_heads=2,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=64,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )
    return FramesGraph(model).eval()


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[FramesGraph, Path]:
    module = tiny_wav2vec2()
    path = tmp_path_factory.mktemp("peer") / "tiny.onnx"
    return module, export_speech_model(module, path, OUTPUT_NAMES)


def test_exported_peer_matches_torch_on_a_padded_batch_of_speech(
    tiny_export: tuple[FramesGraph, Path],
) -> None:
    module, path = tiny_export
    long_clip = read_speech(ravdess_clip())[:16_000]
    short_clip = read_speech(ravdess_clip("03-01-01-01-01-01-02.flac"))[:9_000]
    waveforms, lengths = pad_batch([long_clip, short_clip])
    frames, frame_lengths = build_session(path, 1).run(
        None, {"waveform": waveforms, "lengths": lengths}
    )
    with torch.no_grad():
        expected, expected_lengths = module(torch.from_numpy(waveforms), torch.from_numpy(lengths))
    assert frames.shape == (2, expected.shape[1], 32)
    assert frame_lengths.tolist() == expected_lengths.tolist()
    valid = int(expected_lengths[1])
    assert np.abs(frames[1, :valid] - expected[1, :valid].numpy()).max() < 1e-4
    assert np.abs(frames[0] - expected[0].numpy()).max() < 1e-4


def test_exported_peer_takes_other_batch_sizes_and_lengths(
    tiny_export: tuple[FramesGraph, Path],
) -> None:
    _, path = tiny_export
    waveforms = np.zeros((3, 48_000), dtype=np.float32)
    lengths = np.array([48_000, 20_000, 4_000], dtype=np.int64)
    frames, frame_lengths = build_session(path, 1).run(
        None, {"waveform": waveforms, "lengths": lengths}
    )
    assert frames.shape[0] == 3
    assert frame_lengths[0] > frame_lengths[1] > frame_lengths[2]


def test_cached_builds_once_and_reuses_the_file(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(target: Path) -> Path:
        calls.append(target)
        target.write_bytes(b"graph")
        return target

    first = cached(tmp_path / "model.onnx", build)
    second = cached(tmp_path / "model.onnx", build)
    assert first == second == tmp_path / "model.onnx"
    assert len(calls) == 1
    assert calls[0].name == "model.partial.onnx"
    assert first.read_bytes() == b"graph"


@pytest.mark.parametrize(("key", "millions"), [("distilhubert", 23.49), ("wav2vec2-base", 94.4)])
def test_peer_architectures_have_the_published_sizes(key: str, millions: float) -> None:
    spec = next(spec for spec in PEERS if spec.key == key)
    parameters = sum(p.numel() for p in build_peer(spec).parameters())
    assert parameters / 1e6 == pytest.approx(millions, abs=0.05)
