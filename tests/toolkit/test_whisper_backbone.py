"""The Whisper tiny.en backbone: weight reader, front end, encoder, ONNX, CTranslate2 parity."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.nn import functional as F  # noqa: N812

from toolkit.backbones import (
    CT2FormatError,
    CT2Model,
    WhisperTinyEncoder,
    WhisperWeightsError,
    default_model_path,
    read_ct2_model,
)
from toolkit.backbones.measure_whisper import (
    cosine_rows,
    encode_features,
    export_encoder_onnx,
    one_thread_session,
    pad_batch,
    run_onnx,
    run_torch,
    whisper_padded_features,
)
from toolkit.backbones.whisper_frontend import (
    HOP_SAMPLES,
    N_FFT,
    reflect_pad_rows,
    slaney_mel_filterbank,
    windowed_dft_basis,
)

RAVDESS = Path("/work/shared/data/ravdess/audio")
CLIPS = ("03-01-01-01-01-01-01", "03-01-03-01-01-02-03", "03-01-05-02-02-01-02")
SENTENCE_01 = "Kids are talking by the door"


@pytest.fixture(scope="module")
def ct2_model() -> CT2Model:
    return read_ct2_model(default_model_path())


@pytest.fixture(scope="module")
def encoder(ct2_model: CT2Model) -> WhisperTinyEncoder:
    torch.set_num_threads(1)
    model = WhisperTinyEncoder()
    model.load_ct2_variables(ct2_model.variables)
    return model.eval()


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [sf.read(RAVDESS / f"{name}.flac", dtype="float32")[0] for name in CLIPS]


# --- the CTranslate2 reader -------------------------------------------------------------


def test_reader_reads_the_installed_whisper_tiny_file(ct2_model: CT2Model) -> None:
    variables = ct2_model.variables
    assert (ct2_model.version, ct2_model.spec_name, ct2_model.revision) == (6, "WhisperSpec", 3)
    assert len(variables) == 148 + 1  # 148 variables and one alias
    conv1 = variables["encoder/conv1/weight"]
    assert conv1.shape == (384, 80, 3) and conv1.dtype == np.float16
    assert variables["encoder/position_encodings/encodings"].shape == (1500, 384)
    assert variables["encoder/layer_3/self_attention/linear_0/weight"].shape == (1152, 384)
    assert int(variables["encoder/num_heads"]) == 6
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    encoder_names = [name for name in variables if name.startswith("encoder/")]
    assert len(encoder_names) == 4 + 4 * 12 + 2 + 2  # convs, layers, final norm, heads, pos


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _variable(name: str, shape: tuple[int, ...], code: int, data: bytes) -> bytes:
    dims = b"".join(struct.pack("<I", dim) for dim in shape)
    header = _string(name) + struct.pack("<B", len(shape)) + dims + struct.pack("<B", code)
    return header + struct.pack("<I", len(data)) + data


def _model_bytes(variables: list[bytes], aliases: list[tuple[str, str]], version: int = 6) -> bytes:
    head = struct.pack("<I", version) + _string("TinySpec") + struct.pack("<I", 1)
    body = struct.pack("<I", len(variables)) + b"".join(variables)
    tail = struct.pack("<I", len(aliases)) + b"".join(_string(a) + _string(t) for a, t in aliases)
    return head + body + tail


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    return path


def test_reader_decodes_every_dtype_and_aliases(tmp_path: Path) -> None:
    bf16_bits = (np.array([1.5, -2.0], np.float32).view(np.uint32) >> 16).astype("<u2")
    content = _model_bytes(
        [
            _variable("a/f32", (2, 2), 0, np.arange(4, dtype="<f4").tobytes()),
            _variable("a/i8", (), 1, b"\x07"),
            _variable("a/i32", (1,), 3, struct.pack("<i", -5)),
            _variable("a/bf16", (2,), 5, bf16_bits.tobytes()),
        ],
        [("a/alias", "a/f32")],
    )
    model = read_ct2_model(_write(tmp_path, content))
    np.testing.assert_array_equal(model.variables["a/f32"], [[0, 1], [2, 3]])
    assert int(model.variables["a/i8"]) == 7 and model.variables["a/i32"].tolist() == [-5]
    np.testing.assert_array_equal(model.variables["a/bf16"], [1.5, -2.0])
    assert model.variables["a/alias"] is model.variables["a/f32"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_model_bytes([], [], version=2), "binary version 2 is not supported"),
        (_model_bytes([_variable("x", (3,), 4, b"\0" * 4)], []), "needs 6"),
        (_model_bytes([_variable("x", (1,), 9, b"\0")], []), "unknown dtype code 9"),
        (_model_bytes([], [("y", "missing")]), "points to missing"),
        (_model_bytes([], []) + b"\0\0", "2 unexpected bytes"),
        (_model_bytes([_variable("x", (8,), 0, b"\0" * 32)], [])[:40], "truncated"),
    ],
)
def test_reader_rejects_a_malformed_file(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(CT2FormatError, match=message):
        read_ct2_model(_write(tmp_path, content))


# --- the log-mel front end --------------------------------------------------------------


def test_reflect_padding_of_full_rows_equals_torch_reflect_pad() -> None:
    waveform = torch.randn(2, 1000)
    padded = reflect_pad_rows(waveform, torch.tensor([1000, 1000]), 200)
    expected = F.pad(waveform.unsqueeze(1), (200, 200), mode="reflect").squeeze(1)
    torch.testing.assert_close(padded, expected, rtol=0, atol=0)


def test_dft_convolution_gives_the_stft_power() -> None:
    signal = torch.randn(1, 16_000, dtype=torch.float64)
    basis = windowed_dft_basis().to(torch.float64)
    parts = F.conv1d(signal.unsqueeze(1), basis, stride=HOP_SAMPLES).squeeze(0)
    power = parts[:201] ** 2 + parts[201:] ** 2
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    stft = torch.stft(signal, N_FFT, HOP_SAMPLES, window=window, center=False, return_complex=True)
    torch.testing.assert_close(power, stft.abs().squeeze(0) ** 2, rtol=1e-5, atol=1e-5)


def _slaney_filterbank_numpy(
    n_mels: int = 80, n_fft: int = 400, rate_hz: int = 16_000
) -> np.ndarray:
    """Independent Slaney filterbank (Auditory Toolbox scale, area-normalised triangles)."""
    linear_hz_per_mel, break_hz, log_step = 200.0 / 3, 1000.0, np.log(6.4) / 27

    def to_mel(hz: np.ndarray) -> np.ndarray:
        log_part = break_hz / linear_hz_per_mel + np.log(np.maximum(hz, 1e-9) / break_hz) / log_step
        return np.where(hz >= break_hz, log_part, hz / linear_hz_per_mel)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        break_mel = break_hz / linear_hz_per_mel
        return np.where(
            mel >= break_mel,
            break_hz * np.exp(log_step * (mel - break_mel)),
            mel * linear_hz_per_mel,
        )

    edges = to_hz(np.linspace(0.0, float(to_mel(np.array(rate_hz / 2))), n_mels + 2))
    bins_hz = np.linspace(0, rate_hz / 2, n_fft // 2 + 1)
    rising = (bins_hz[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    falling = (edges[None, 2:] - bins_hz[:, None]) / (edges[2:] - edges[1:-1])
    triangles: np.ndarray = np.maximum(0, np.minimum(rising, falling))
    area_norm: np.ndarray = 2.0 / (edges[2:] - edges[:-2])
    fbank: np.ndarray = triangles * area_norm
    return fbank


def test_mel_filterbank_is_slaney_scale_with_area_normalisation() -> None:
    fbank = slaney_mel_filterbank().numpy()
    np.testing.assert_allclose(fbank, _slaney_filterbank_numpy(), rtol=1e-4, atol=1e-7)


def test_features_have_one_frame_per_10_ms_zero_past_the_end(encoder: WhisperTinyEncoder) -> None:
    waveform = torch.randn(2, 16_000) * 0.1
    waveform[1, 8_000:] = 0.0
    features, frame_lengths = encoder.frontend(waveform, torch.tensor([16_000, 8_000]))
    assert features.shape == (2, 80, 100) and frame_lengths.tolist() == [100, 50]
    assert torch.all(features[1, :, 50:] == 0)
    # log10 floored at max - 8, then (x + 4) / 4: at most 2 below the row's maximum
    assert features[0].min() >= features[0].max() - 2.0 - 1e-6


# --- the encoder ------------------------------------------------------------------------


def test_encoder_gives_384_d_frames_every_20_ms_and_a_valid_mask(
    encoder: WhisperTinyEncoder,
) -> None:
    waveform = torch.randn(2, 16_000) * 0.1
    with torch.no_grad():
        frames, valid = encoder(waveform, torch.tensor([16_000, 6_400]))
    assert frames.shape == (2, 50, encoder.output_dim) and encoder.frame_hop_s == 0.02
    assert valid.dtype == torch.bool and valid.sum(1).tolist() == [50, 20]
    assert torch.all(frames[1, 20:] == 0) and torch.all(frames[1, :20].abs().sum(-1) > 0)


def test_a_padded_batch_matches_each_clip_alone(
    encoder: WhisperTinyEncoder, clips: list[np.ndarray]
) -> None:
    batch = run_torch(encoder, *pad_batch(clips))
    for row, clip in enumerate(clips):
        alone = run_torch(encoder, *pad_batch([clip]))[0]
        # float32 sums in attention kernels chosen by sequence length: ~1e-4 on values ~2
        np.testing.assert_allclose(batch[row, : len(alone)], alone, rtol=1e-4, atol=1e-4)
        assert np.all(batch[row, len(alone) :] == 0)
    assert len({len(clip) for clip in clips}) == len(clips)  # really padded


def test_input_longer_than_30_s_is_refused(encoder: WhisperTinyEncoder) -> None:
    with pytest.raises(ValueError, match="the most is 1500"):
        encoder(torch.zeros(1, 480_320), torch.tensor([480_320]))


def test_trainable_layers_are_the_top_k(encoder: WhisperTinyEncoder) -> None:
    try:
        encoder.set_trainable_layers(2)
        names = [name for name, _ in encoder.named_parameters()]
        trainable = [name for name, p in encoder.named_parameters() if p.requires_grad]
        top = ("layers.2.", "layers.3.", "final_norm.")
        assert trainable == [name for name in names if name.startswith(top)]
        assert encoder.trainable_layers == 2
        frames, _ = encoder(torch.randn(1, 8_000) * 0.1, torch.tensor([8_000]))
        frames.sum().backward()
        assert encoder.encoder_layers[3].qkv.weight.grad is not None
        assert (
            encoder.encoder_layers[1].qkv.weight.grad is None and encoder.conv1.weight.grad is None
        )
        encoder.zero_grad(set_to_none=True)
        encoder.freeze()
        assert not any(p.requires_grad for p in encoder.parameters())
        with pytest.raises(ValueError, match=r"k must be in \[0, 4\]"):
            encoder.set_trainable_layers(5)
    finally:
        encoder.unfreeze()
    assert all(p.requires_grad for p in encoder.parameters())


def test_weights_of_another_shape_are_refused(ct2_model: CT2Model) -> None:
    variables = dict(ct2_model.variables)
    variables["encoder/conv1/weight"] = np.zeros((384, 128, 3), np.float16)
    with pytest.raises(WhisperWeightsError, match=r"encoder/conv1/weight: shape \(384, 128, 3\)"):
        WhisperTinyEncoder().load_ct2_variables(variables)
    del variables["encoder/layer_norm/gamma"]
    with pytest.raises(WhisperWeightsError, match="missing from the file"):
        WhisperTinyEncoder().load_ct2_variables(variables)


# --- ONNX and CTranslate2 ---------------------------------------------------------------


@pytest.mark.slow  # about 12 s: the dynamo export
def test_onnx_export_matches_torch_on_real_clips(
    encoder: WhisperTinyEncoder, clips: list[np.ndarray], tmp_path: Path
) -> None:
    """Whole graph (front end + encoder), dynamic batch and length, one ONNX file.

    Outputs reach |x| ~ 11; float32 rounding in quiet spectral bins moves a few elements
    by up to ~3e-4 (the torch graph itself differs from float64 by ~1e-4), so the 1e-4
    bound is asserted on 99.9 % of the elements and 1e-3 on all of them.
    """
    session = one_thread_session(export_encoder_onnx(encoder, tmp_path / "encoder.onnx"))
    waveform, lengths = pad_batch(clips)
    onnx_frames = run_onnx(session, waveform, lengths)
    difference = np.abs(onnx_frames - run_torch(encoder, waveform, lengths))
    assert np.quantile(difference, 0.999) < 1e-4 and difference.max() < 1e-3
    three_s = pad_batch([clips[2][:48_000]])
    one = run_onnx(session, *three_s)
    assert one.shape == (1, 150, 384)
    assert np.quantile(np.abs(one - run_torch(encoder, *three_s)), 0.999) < 1e-4


def test_matches_ctranslate2_encoder_and_its_decoder_reads_our_frames(
    encoder: WhisperTinyEncoder, clips: list[np.ndarray]
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    features = whisper_padded_features(encoder, clips[0])  # (1, 80, 3000), as Whisper pads
    whisper = ctranslate2.models.Whisper(
        str(default_model_path().parent), compute_type="float32", intra_threads=1
    )
    reference = np.asarray(
        whisper.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)
    )
    ours = encode_features(encoder, features)
    assert np.abs(ours - reference).max() < 2e-3
    assert cosine_rows(ours, reference).min() > 0.99999
    prompt = [["<|startoftranscript|>", "<|notimestamps|>"]]
    result = whisper.generate(ctranslate2.StorageView.from_array(ours), prompt)
    text = "".join(result[0].sequences[0]).replace("\u0120", " ").strip()
    assert text.rstrip(".") == SENTENCE_01


@pytest.mark.parametrize("tuned", [0, 1, 2, 4])
def test_frozen_prefix_then_suffix_equals_the_encoder(
    encoder: WhisperTinyEncoder, clips: list[np.ndarray], tuned: int
) -> None:
    padded, sample_counts = pad_batch(clips)
    waveform, lengths = torch.from_numpy(padded), torch.from_numpy(sample_counts)
    try:
        encoder.set_trainable_layers(tuned)
        assert encoder.prefix_is_frozen
        with torch.no_grad():
            whole, valid = encoder(waveform, lengths)
            hidden, prefix_valid = encoder.frozen_prefix(waveform, lengths)
            split = encoder.trainable_suffix(hidden, prefix_valid)
        assert torch.equal(valid, prefix_valid)
        assert float((whole - split).abs().max()) < 1e-5
        assert float(hidden[~valid].abs().max()) == 0.0
    finally:
        encoder.unfreeze()
    assert not encoder.prefix_is_frozen


# --- truncated encoder (model.whisper_layers) -----------------------------------------------


def test_a_truncated_encoder_is_the_bottom_layers_of_the_whole_one(
    ct2_model: CT2Model, encoder: WhisperTinyEncoder, clips: list[np.ndarray]
) -> None:
    truncated = WhisperTinyEncoder(num_layers=2)
    truncated.load_ct2_variables(ct2_model.variables)
    truncated.eval()
    assert len(truncated.encoder_layers) == 2 and truncated.num_layers == 2
    padded, sample_counts = pad_batch(clips)
    waveform, lengths = torch.from_numpy(padded), torch.from_numpy(sample_counts)
    with torch.no_grad():
        frames, valid = truncated(waveform, lengths)
        features, frame_lengths = encoder.frontend(waveform, lengths)
        hidden, _ = encoder.embed_features(features, frame_lengths)
        bottom_two = encoder.final_norm(encoder.run_layers(hidden, valid, 0, 2))
        whole, _ = encoder(waveform, lengths)
    assert float((frames - bottom_two * valid.unsqueeze(-1)).abs().max()) < 1e-5
    assert float((frames - whole).abs().max()) > 0.1  # layers 2 and 3 are really gone


@pytest.mark.parametrize(
    ("tuned", "tuned_parts"),
    [(1, {"layers.1", "final_norm"}), (2, {"layers.0", "layers.1", "final_norm"})],
)
def test_a_truncated_encoder_fine_tunes_and_caches_its_own_top_layers(
    ct2_model: CT2Model, clips: list[np.ndarray], tuned: int, tuned_parts: set[str]
) -> None:
    truncated = WhisperTinyEncoder(num_layers=2)
    truncated.load_ct2_variables(ct2_model.variables)
    truncated.set_trainable_layers(tuned)
    names = [name for name, p in truncated.named_parameters() if p.requires_grad]
    assert {name.rsplit(".", 2)[0] for name in names} == tuned_parts
    assert truncated.prefix_is_frozen and truncated.trainable_layers == tuned
    padded, sample_counts = pad_batch(clips)
    waveform, lengths = torch.from_numpy(padded), torch.from_numpy(sample_counts)
    with torch.no_grad():
        whole, _ = truncated.eval()(waveform, lengths)
        split = truncated.trainable_suffix(*truncated.frozen_prefix(waveform, lengths))
    assert float((whole - split).abs().max()) < 1e-5
    with pytest.raises(ValueError, match=r"k must be in \[0, 2\]"):
        truncated.set_trainable_layers(3)


@pytest.mark.parametrize("layers", [0, 5])
def test_a_layer_count_outside_1_to_4_is_refused(layers: int) -> None:
    with pytest.raises(ValueError, match=r"num_layers must be in \[1, 4\]"):
        WhisperTinyEncoder(num_layers=layers)
