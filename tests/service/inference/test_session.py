"""Loading real ONNX models and refusing the ones that break the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.errors import ModelLoadError
from service.inference.session import OnnxModel, SessionTuning, session_options
from tests.onnx_factory import TinyModelSpec, build_model


def test_loads_and_runs_every_head(tmp_path: Path) -> None:
    model = OnnxModel(build_model(tmp_path, TinyModelSpec(ensemble_members=3)))
    waveforms = np.zeros((2, 32000), dtype=np.float32)
    waveforms[0] = 0.5
    outputs = model.run(waveforms, np.array([32000, 8000]))
    assert outputs.categorical_logits.shape == (2, 6)
    assert outputs.affect is not None and np.all((outputs.affect >= 0) & (outputs.affect <= 1))
    assert outputs.ensemble_logits is not None and outputs.ensemble_logits.shape == (2, 3, 6)
    assert not np.allclose(outputs.categorical_logits[0], outputs.categorical_logits[1])
    assert model.key == "tiny@1.0.0"


def test_missing_output_names_the_node(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path, TinyModelSpec(drop_output="vad"))
    with pytest.raises(ModelLoadError, match=r"model\.onnx: output node 'vad' \(head 'affect'\)"):
        OnnxModel(model_dir)


def test_label_count_mismatch_names_the_node(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path, TinyModelSpec(categorical_width=5))
    with pytest.raises(ModelLoadError, match=r"output node 'logits' .* 5 values .* 6 labels"):
        OnnxModel(model_dir)


def test_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"sha256 .* does not match"):
        OnnxModel(model_dir)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path)
    (model_dir / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"model\.onnx: model file missing"):
        OnnxModel(model_dir)


def test_corrupt_model_file_is_refused(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path)
    model_path = model_dir / "model.onnx"
    model_path.write_bytes(b"not an onnx graph")
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    import hashlib

    manifest["sha256"] = hashlib.sha256(model_path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"not a loadable ONNX model"):
        OnnxModel(model_dir)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sampling_rate_hz", 4000, r"sampling_rate_hz"),
        ("file", "../model.onnx", r"plain file name"),
        ("name", "Bad Name", r"name"),
    ],
)
def test_manifest_contract_is_checked(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    model_dir = build_model(tmp_path)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[field] = value
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=message):
        OnnxModel(model_dir)


def test_non_canonical_label_is_refused(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["heads"]["categorical"]["labels"][0] = "joy"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"\['joy'\] are not canonical"):
        OnnxModel(model_dir)


def test_manifest_that_is_not_json_is_named(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path)
    (model_dir / "manifest.json").write_text("{")
    with pytest.raises(ModelLoadError, match=r"manifest\.json: not valid JSON"):
        OnnxModel(model_dir)


def test_sessions_get_the_measured_options() -> None:
    options = session_options(1, SessionTuning())
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.enable_cpu_mem_arena is True
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_session_tuning_can_be_changed_for_measurement() -> None:
    tuning = SessionTuning(graph_level="basic", cpu_mem_arena=False, parallel_execution=True)
    options = session_options(2, tuning)
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert options.enable_cpu_mem_arena is False
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL


def test_the_load_probe_finds_whether_rows_depend_on_each_other(tmp_path: Path) -> None:
    """Float and static int8 graphs keep rows independent; a dynamic int8 graph (the shipped
    default) does not: its activation ranges are measured over the batch, so it is served one
    request per model call."""
    import onnx

    from service.config import REPOSITORY_ROOT

    assert OnnxModel(build_model(tmp_path / "tiny")).rows_independent
    shipped = sorted((REPOSITORY_ROOT / "models").glob("*/*/manifest.json"))
    dynamic_seen = False
    for manifest in shipped:
        model = OnnxModel(manifest.parent)
        operators = {node.op_type for node in onnx.load(str(model.path)).graph.node}
        dynamic = "DynamicQuantizeLinear" in operators
        dynamic_seen |= dynamic
        assert model.rows_independent is not dynamic, model.key
    assert dynamic_seen, "no shipped dynamic int8 model left: test it on a built one"
