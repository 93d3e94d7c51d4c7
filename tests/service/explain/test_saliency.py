"""Occlusion saliency: STFT occlusion with known answers, saliency on a model whose evidence is
known (a band-energy ONNX graph), region merging, and faithfulness by deletion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import scipy.signal
import soundfile
from onnx import TensorProto, helper, numpy_helper

from service.audio.segment import Segment
from service.explain.occlusion import istft, mel_band_edges_hz, plan_occlusion, stft, tile_grid
from service.explain.saliency import (
    MAX_SALIENT_SHARE,
    Saliency,
    deletion_curve,
    explanation_grid,
    occlusion_saliency,
    saliency_order,
    salient_regions,
)
from service.inference.manifest import (
    CategoricalHead,
    Heads,
    InputNames,
    Manifest,
    Windowing,
    write_manifest,
)
from service.inference.session import OnnxModel
from tests.data_paths import ravdess_clip

RATE_HZ = 16000
BAND_HZ = (1000.0, 2000.0)
FIR_TAPS = 129  # 8 ms: sharp enough to separate the 921-1768 Hz tile band from its neighbours
TONE_HZ = 1500.0
TONE_SPAN_S = (2.0, 2.5)


def speech() -> np.ndarray:
    signal, rate_hz = soundfile.read(ravdess_clip(), dtype="float64")
    assert rate_hz == RATE_HZ
    return np.asarray(signal)


def with_tone(signal: np.ndarray) -> np.ndarray:
    """``signal`` plus a 1.5 kHz tone burst (amplitude 0.3) over ``TONE_SPAN_S``."""
    out = signal.copy()
    a, b = (round(t * RATE_HZ) for t in TONE_SPAN_S)
    out[a:b] += 0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(b - a) / RATE_HZ)
    return out


def band_log_energy(signal: np.ndarray) -> float:
    taps = scipy.signal.firwin(FIR_TAPS, BAND_HZ, pass_zero=False, fs=RATE_HZ)
    filtered = np.convolve(signal, taps, mode="valid")
    return float(np.log(np.mean(filtered**2) + 1e-10))


def build_band_model(directory: Path, reference_log_energy: float) -> OnnxModel:
    """Labels (neutral, angry): angry's logit is 2 (log band energy 1-2 kHz - reference).

    Only energy between 1 and 2 kHz moves the answer, so a faithful saliency must find it.
    """
    taps = scipy.signal.firwin(FIR_TAPS, BAND_HZ, pass_zero=False, fs=RATE_HZ)
    initializers = [
        numpy_helper.from_array(taps.astype(np.float32).reshape(1, 1, -1), "fir"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "channel_axis"),
        numpy_helper.from_array(np.array(1e-10, dtype=np.float32), "epsilon"),
        numpy_helper.from_array(np.array([[0.0, 2.0]], dtype=np.float32), "weight"),
        numpy_helper.from_array(
            np.array([0.0, -2.0 * reference_log_energy], dtype=np.float32), "bias"
        ),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["waveform", "channel_axis"], ["column"]),
        helper.make_node("Conv", ["column", "fir"], ["filtered"]),
        helper.make_node("Mul", ["filtered", "filtered"], ["power"]),
        helper.make_node("ReduceMean", ["power"], ["energy"], axes=[1, 2], keepdims=0),
        helper.make_node("Add", ["energy", "epsilon"], ["energy_safe"]),
        helper.make_node("Log", ["energy_safe"], ["log_energy"]),
        helper.make_node("Unsqueeze", ["log_energy", "channel_axis"], ["feature"]),
        helper.make_node("MatMul", ["feature", "weight"], ["product"]),
        helper.make_node("Add", ["product", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "band_energy",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model_dir = directory / "band" / "1.0.0"
    model_dir.mkdir(parents=True)
    onnx.save(model, model_dir / "model.onnx")
    manifest = Manifest(
        name="band",
        version="1.0.0",
        sha256=hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest(),
        sampling_rate_hz=RATE_HZ,
        inputs=InputNames(waveform="waveform", lengths=None),
        heads=Heads(categorical=CategoricalHead(output="logits", labels=("neutral", "angry"))),
        windowing=Windowing(window_s=6.0, hop_s=3.0),
    )
    write_manifest(manifest, model_dir)
    return OnnxModel(model_dir)


@pytest.fixture(scope="module")
def band_model(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    return build_band_model(tmp_path_factory.mktemp("band"), band_log_energy(speech()))


def whole(signal: np.ndarray) -> tuple[Segment, ...]:
    return (Segment(0.0, signal.shape[0] / RATE_HZ),)


def test_stft_reconstructs_the_signal_exactly() -> None:
    signal = speech()
    assert np.max(np.abs(istft(stft(signal, 512), 512, signal.shape[0]) - signal)) < 1e-12


def test_mel_bands_span_zero_to_nyquist() -> None:
    edges = mel_band_edges_hz(6, RATE_HZ)
    assert edges[0] == 0.0 and edges[-1] == pytest.approx(8000.0)
    assert np.round(edges).tolist() == [0, 365, 921, 1768, 3056, 5016, 8000]


def test_occluding_a_tile_changes_only_its_time_span_and_band() -> None:
    signal = speech()
    grid = tile_grid(1.0, 3.0, 8, 6, RATE_HZ)
    plan = plan_occlusion(signal, RATE_HZ, grid)
    tile = 3 * grid.n_bands + 2  # 1.75-2.0 s, 921-1768 Hz
    start_s, end_s, low_hz, high_hz = grid.tile_bounds(tile)
    changed = np.flatnonzero(np.abs(plan.occluded([tile]) - signal) > 1e-9) / RATE_HZ
    half_window_s = plan.n_fft / 2 / RATE_HZ
    assert changed.min() >= start_s - half_window_s and changed.max() <= end_s + half_window_s
    before, after = stft(signal, 512), stft(plan.occluded([tile]), 512)
    bins_hz = np.arange(before.shape[1]) * RATE_HZ / 512
    frames = slice(round((start_s + 0.02) * RATE_HZ / 128), round((end_s - 0.02) * RATE_HZ / 128))
    ratio_db = 20 * np.log10(np.abs(after[frames]) + 1e-9) - 20 * np.log10(
        np.abs(before[frames]) + 1e-9
    )
    in_band = (bins_hz > low_hz + 60) & (bins_hz < high_hz - 60)
    far = (bins_hz < low_hz - 250) | (bins_hz > high_hz + 250)
    assert np.median(ratio_db[:, in_band]) < -10.0  # the speech in the tile is gone
    far_energy_ratio = np.sum(np.abs(after[frames][:, far]) ** 2) / np.sum(
        np.abs(before[frames][:, far]) ** 2
    )
    assert far_energy_ratio == pytest.approx(1.0, abs=0.01)  # everything else is untouched


def test_occluding_everything_leaves_the_noise_floor_and_no_tile_is_identity() -> None:
    signal = speech()
    grid = tile_grid(0.0, signal.shape[0] / RATE_HZ, 4, 6, RATE_HZ)
    plan = plan_occlusion(signal, RATE_HZ, grid)
    assert np.array_equal(plan.occluded([]), signal)
    silenced = plan.occluded(list(range(grid.n_tiles)))
    quiet = signal[: round(0.5 * RATE_HZ)]  # the clip starts with 0.5 s of room noise
    assert np.mean(silenced**2) < 3 * np.mean(quiet**2)
    assert np.mean(silenced**2) < 0.01 * np.mean(signal**2)


def test_saliency_finds_the_evidence_the_model_uses(band_model: OnnxModel) -> None:
    signal = with_tone(speech())
    grid = explanation_grid(0.5, 3.5, RATE_HZ)
    saliency = occlusion_saliency(signal, whole(signal), band_model, grid, label_index=1)
    regions = salient_regions(saliency)
    top = regions[0]
    assert top.low_hz < TONE_HZ < top.high_hz
    assert top.start_s >= TONE_SPAN_S[0] - 0.25 and top.end_s <= TONE_SPAN_S[1] + 0.25
    assert top.weight > 0.5
    assert saliency.weight.sum() == pytest.approx(1.0)
    assert saliency.model_calls == -(-(grid.n_tiles + 1) // 32)  # one batch per 32 rows


def test_base_probabilities_match_a_plain_model_run(band_model: OnnxModel) -> None:
    signal = speech()
    grid = explanation_grid(1.0, 3.0, RATE_HZ)
    saliency = occlusion_saliency(signal, whole(signal), band_model, grid, label_index=1)
    logits = band_model.run(signal[None].astype(np.float32), np.array([signal.shape[0]]))
    expected = np.exp(logits.categorical_logits[0]) / np.exp(logits.categorical_logits[0]).sum()
    assert saliency.base_probabilities == pytest.approx(expected, abs=1e-5)


def test_segments_are_scored_like_predict(band_model: OnnxModel) -> None:
    """Two segments: occluding a tile changes only the segments it overlaps."""
    signal = speech()
    segments = (Segment(0.0, 2.0), Segment(2.0, signal.shape[0] / RATE_HZ))
    grid = tile_grid(0.5, 1.5, 4, 6, RATE_HZ)  # all tiles inside the first segment
    saliency = occlusion_saliency(signal, segments, band_model, grid, label_index=1)
    plan = saliency.plan
    tile = int(np.argmax(saliency.drop))
    pieces = [plan.occluded([tile])[: 2 * RATE_HZ], signal[2 * RATE_HZ :]]
    run = [band_model.run(p[None].astype(np.float32), np.array([p.size])) for p in pieces]
    probabilities = [
        np.exp(r.categorical_logits[0]) / np.exp(r.categorical_logits[0]).sum() for r in run
    ]
    weights = np.array([p.size for p in pieces]) / signal.shape[0]
    expected = weights[0] * probabilities[0] + weights[1] * probabilities[1]
    assert saliency.tile_probabilities[tile] == pytest.approx(expected, abs=1e-5)


def synthetic_saliency(weights: np.ndarray, n_times: int, n_bands: int) -> Saliency:
    grid = tile_grid(0.0, float(n_times), n_times, n_bands, RATE_HZ)
    plan = plan_occlusion(np.zeros(RATE_HZ), RATE_HZ, grid)
    flat = weights.reshape(-1).astype(float)
    return Saliency(
        grid=grid,
        label_index=0,
        base_probabilities=np.array([1.0]),
        tile_probabilities=np.zeros((flat.size, 1)),
        drop=flat,
        attention_relative=np.ones(flat.size),
        weight=flat / flat.sum(),
        model_calls=0,
        used_attention=False,
        plan=plan,
    )


def test_regions_merge_adjacent_tiles_in_time_and_frequency() -> None:
    weights = np.full((8, 4), 1.5)  # total 91: the block holds 44 %, block + lone 54 %
    weights[2:4, 1:3] = 10.0  # a 2x2 block -> one region
    weights[6, 0] = 9.0  # a lone tile -> its own region
    regions = salient_regions(synthetic_saliency(weights, 8, 4))
    assert len(regions) == 2
    block, lone = regions
    assert (block.start_s, block.end_s) == (2.0, 4.0)
    grid_edges = mel_band_edges_hz(4, RATE_HZ)
    assert (block.low_hz, block.high_hz) == (grid_edges[1], grid_edges[3])
    assert block.weight == pytest.approx(40 / weights.sum())
    assert (lone.start_s, lone.end_s, lone.low_hz) == (6.0, 7.0, 0.0)


def test_regions_stop_at_half_the_weight_and_a_quarter_of_the_tiles() -> None:
    flat = np.ones((8, 4))  # uniform: half the mass would need half the tiles
    regions = salient_regions(synthetic_saliency(flat, 8, 4))
    total_tiles = sum(
        round(r.end_s - r.start_s)
        * (
            np.searchsorted(mel_band_edges_hz(4, RATE_HZ), r.high_hz)
            - np.searchsorted(mel_band_edges_hz(4, RATE_HZ), r.low_hz)
        )
        for r in regions
    )
    assert total_tiles == MAX_SALIENT_SHARE * 32


def test_no_positive_drop_gives_no_regions() -> None:
    saliency = synthetic_saliency(np.ones((4, 2)), 4, 2)
    empty = Saliency(**{**saliency.__dict__, "weight": np.zeros(8)})
    assert salient_regions(empty) == []


def test_deleting_salient_tiles_lowers_the_label_more_than_random_tiles(
    band_model: OnnxModel,
) -> None:
    """Faithfulness by deletion on real speech (no tone): the model uses 1-2 kHz energy."""
    signal = speech()
    grid = explanation_grid(1.0, 3.0, RATE_HZ)
    saliency = occlusion_saliency(signal, whole(signal), band_model, grid, label_index=1)
    counts = [0, 2, 4, 8, 12]
    salient = deletion_curve(saliency, whole(signal), band_model, saliency_order(saliency), counts)
    rng = np.random.default_rng(0)
    random_curves = [
        deletion_curve(
            saliency, whole(signal), band_model, list(rng.permutation(grid.n_tiles)), counts
        )
        for _ in range(5)
    ]
    random_mean = np.mean(random_curves, axis=0)
    assert salient[0] == pytest.approx(random_mean[0])
    assert np.all(salient[1:] < random_mean[1:])
    assert np.trapezoid(salient, counts) < 0.8 * np.trapezoid(random_mean, counts)
