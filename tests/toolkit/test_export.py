"""ONNX export, parity with PyTorch on real clips, int8 quantisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from toolkit.data import load_corpus
from toolkit.export import (
    check_parity,
    export_onnx,
    graph_sha256,
    int8_method_of,
    parity,
    quantisable_nodes,
    quantise_int8,
    run_onnx,
    session,
    sha256_of,
)
from toolkit.model.ser_model import ONNX_OUTPUT_NAMES, ModelConfig, build_model
from toolkit.train.dataset import read_waveform

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_clips() -> list[np.ndarray]:
    utterances = load_corpus("ravdess")[:2] + load_corpus("emodb")[:2]
    return [read_waveform(u, 16_000 * 6) for u in utterances]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = build_model(ModelConfig()).eval()
    path = export_onnx(model, tmp_path_factory.mktemp("export") / "model.onnx")
    return model, path


def test_graph_has_contract_inputs_outputs_and_dynamic_axes(
    exported: tuple[torch.nn.Module, Path],
) -> None:
    graph = onnx.load(str(exported[1])).graph
    assert [i.name for i in graph.input] == ["waveform", "lengths"]
    assert tuple(o.name for o in graph.output) == ONNX_OUTPUT_NAMES
    waveform_dims = graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param and not d.dim_value for d in waveform_dims)


def test_parity_on_real_clips_and_padded_batch(
    exported: tuple[torch.nn.Module, Path], real_clips: list[np.ndarray]
) -> None:
    model, path = exported
    diffs = parity(model, path, real_clips)  # type: ignore[arg-type]
    check_parity(diffs)
    assert set(diffs) == {*ONNX_OUTPUT_NAMES, "padding_invariance"}
    assert max(diffs.values()) <= 1e-4


def test_check_parity_names_the_bad_head() -> None:
    with pytest.raises(AssertionError, match="vad"):
        check_parity({"logits": 0.0, "vad": 0.5})


def test_int8_keeps_front_end_float_and_stays_small(
    exported: tuple[torch.nn.Module, Path], real_clips: list[np.ndarray], tmp_path: Path
) -> None:
    _, path = exported
    quantised, skipped = quantisable_nodes(onnx.load(str(path)))
    assert quantised and skipped  # front-end DFT conv and mel matmul are skipped
    target = quantise_int8(path, tmp_path / "model.int8.onnx", real_clips)
    assert int8_method_of(target) == "static"
    assert target.stat().st_size <= 25 * 2**20
    assert target.stat().st_size < path.stat().st_size
    waveform = real_clips[0][None, :]
    outputs = run_onnx(session(target), waveform, np.array([waveform.shape[1]]))
    reference = run_onnx(session(path), waveform, np.array([waveform.shape[1]]))
    assert outputs["logits"].shape == (1, 9)
    assert np.abs(outputs["vad"] - reference["vad"]).max() < 0.1
    assert np.isclose(outputs["frame_attention"].sum(), 1.0, atol=1e-3)


def test_the_graph_does_not_depend_on_where_the_checkout_is(
    exported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    _, path = exported
    graph = onnx.load(str(path))
    keys = {entry.key for node in graph.graph.node for entry in node.metadata_props}
    assert "pkg.torch.onnx.stack_trace" not in keys  # absolute source paths are stripped
    assert "namespace" in keys  # the rest of the exporter's metadata stays
    moved = graph.graph.node[0].metadata_props.add()
    moved.key, moved.value = "pkg.torch.onnx.stack_trace", 'File "/elsewhere/toolkit/x.py"'
    elsewhere = tmp_path / "elsewhere.onnx"
    onnx.save(graph, str(elsewhere))
    assert sha256_of(elsewhere) != sha256_of(path)
    assert graph_sha256(elsewhere) == graph_sha256(path)
    graph.graph.initializer[0].raw_data = bytes(len(graph.graph.initializer[0].raw_data))
    onnx.save(graph, str(elsewhere))
    assert graph_sha256(elsewhere) != graph_sha256(path)  # other weights: another graph


def test_sha256_of_known_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_dynamic_int8_quantises_without_calibration_and_keeps_the_front_end_float(
    exported: tuple[torch.nn.Module, Path], real_clips: list[np.ndarray], tmp_path: Path
) -> None:
    _, path = exported
    target = quantise_int8(path, tmp_path / "model.int8-dynamic.onnx", [], method="dynamic")
    graph = onnx.load(str(target)).graph
    operators = {node.op_type for node in graph.node}
    assert {"DynamicQuantizeLinear"} <= operators  # activation ranges measured per call
    assert "QuantizeLinear" not in operators  # no fixed (calibrated) ranges
    assert int8_method_of(target) == "dynamic"
    front_end = [n for n in graph.node if any("frontend" in name for name in n.input)]
    assert front_end and all(n.op_type in ("Conv", "MatMul") for n in front_end)
    assert target.stat().st_size < path.stat().st_size
    waveform = real_clips[1][None, :]
    outputs = run_onnx(session(target), waveform, np.array([waveform.shape[1]]))
    reference = run_onnx(session(path), waveform, np.array([waveform.shape[1]]))
    assert np.abs(outputs["vad"] - reference["vad"]).max() < 0.1


def test_dynamic_matmul_int8_leaves_every_convolution_float(
    exported: tuple[torch.nn.Module, Path], real_clips: list[np.ndarray], tmp_path: Path
) -> None:
    _, path = exported
    target = quantise_int8(path, tmp_path / "model.int8-mm.onnx", [], method="dynamic_matmul")
    operators = {node.op_type for node in onnx.load(str(target)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger", "Conv"} <= operators
    assert "ConvInteger" not in operators
    assert int8_method_of(target) == "dynamic_matmul"
    dynamic = quantise_int8(path, tmp_path / "model.int8-dynamic.onnx", [], method="dynamic")
    assert "ConvInteger" in {node.op_type for node in onnx.load(str(dynamic)).graph.node}
    waveform = real_clips[2][None, :]
    outputs = run_onnx(session(target), waveform, np.array([waveform.shape[1]]))
    reference = run_onnx(session(path), waveform, np.array([waveform.shape[1]]))
    assert np.abs(outputs["vad"] - reference["vad"]).max() < 0.1


def test_an_unknown_int8_method_is_refused(
    exported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="'percentile' is not one of"):
        quantise_int8(exported[1], tmp_path / "x.onnx", [], method="percentile")
