"""Tiny real ONNX models for tests, built with onnx.helper, with manifests that follow the contract.

The graph computes three features of each row (log energy, peak, duration in seconds) and maps
them linearly to every head, so outputs depend on the audio and tests can assert on them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.inference.manifest import (
    AffectHead,
    AttentionHead,
    CategoricalHead,
    DistributionHead,
    EnsembleHead,
    Heads,
    Manifest,
    OctantHead,
    Uncertainty,
    Windowing,
    write_manifest,
)

OPSET = 17
FEATURES = 3
ATTENTION_STRIDE_SAMPLES = 320
DEFAULT_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust")


@dataclass
class TinyModelSpec:
    """What to build; the defaults make a complete, valid model."""

    name: str = "tiny"
    version: str = "1.0.0"
    labels: tuple[str, ...] = DEFAULT_LABELS
    sampling_rate_hz: int = 16000
    window_s: float = 4.0
    hop_s: float = 2.0
    min_duration_s: float = 0.3
    crop_to_speech: bool = False
    crop_margin_s: float = 0.1
    with_optional_heads: bool = True
    ensemble_members: int = 0
    categorical_width: int | None = None
    """Width of the categorical output (defaults to len(labels)); set it to break the contract."""
    drop_output: str | None = None
    seed: int = 0
    metrics: dict[str, float] = field(default_factory=lambda: {"toy_ua": 0.5})


def build_model(directory: Path, spec: TinyModelSpec | None = None) -> Path:
    """Write ``directory/<name>/<version>/{model.onnx, manifest.json}``; return the model dir."""
    spec = spec or TinyModelSpec()
    model_dir = directory / spec.name / spec.version
    model_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = model_dir / "model.onnx"
    onnx.save(_graph(spec), onnx_path)
    sha256 = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    write_manifest(_manifest(spec, sha256), model_dir)
    return model_dir


def _manifest(spec: TinyModelSpec, sha256: str) -> Manifest:
    optional = spec.with_optional_heads
    return Manifest(
        name=spec.name,
        version=spec.version,
        sha256=sha256,
        sampling_rate_hz=spec.sampling_rate_hz,
        heads=Heads(
            categorical=CategoricalHead(output="logits", labels=spec.labels, temperature=1.5),
            distribution=DistributionHead(output="distribution_logits", labels=spec.labels)
            if optional
            else None,
            affect=AffectHead(output="vad") if optional else None,
            octant=OctantHead(output="octant_logits") if optional else None,
            attention=AttentionHead(output="frame_attention", frame_hop_s=0.02)
            if optional
            else None,
            ensemble=EnsembleHead(output="member_logits") if spec.ensemble_members else None,
        ),
        windowing=Windowing(
            window_s=spec.window_s,
            hop_s=spec.hop_s,
            min_duration_s=spec.min_duration_s,
            crop_to_speech=spec.crop_to_speech,
            crop_margin_s=spec.crop_margin_s,
        ),
        uncertainty=Uncertainty(
            measure="ensemble_mutual_information" if spec.ensemble_members else "entropy",
            abstain_threshold=0.9,
        ),
        metrics=spec.metrics,
        metrics_protocol="toy model for tests",
    )


def _graph(spec: TinyModelSpec) -> onnx.ModelProto:
    rng = np.random.default_rng(spec.seed)
    width = spec.categorical_width or len(spec.labels)
    nodes, initializers = _feature_nodes(spec.sampling_rate_hz)
    outputs = [("logits", width, None)]
    if spec.with_optional_heads:
        outputs += [
            ("distribution_logits", len(spec.labels), None),
            ("vad", 3, "Sigmoid"),
            ("octant_logits", 8, None),
        ]
    for name, size, activation in outputs:
        _linear_head(nodes, initializers, name, size, activation, rng)
    graph_outputs = [_tensor_info(name, ["batch", size]) for name, size, _ in outputs]
    if spec.with_optional_heads:
        _attention_nodes(nodes, initializers)
        graph_outputs.append(_tensor_info("frame_attention", ["batch", "frames"]))
    if spec.ensemble_members:
        _ensemble_nodes(nodes, initializers, spec.ensemble_members, width, rng)
        graph_outputs.append(_tensor_info("member_logits", ["batch", spec.ensemble_members, width]))
    graph_outputs = [info for info in graph_outputs if info.name != spec.drop_output]
    graph = helper.make_graph(
        nodes,
        "tiny_ser",
        [
            _tensor_info("waveform", ["batch", "samples"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        graph_outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _feature_nodes(sampling_rate_hz: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    constants = [
        numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "epsilon"),
        numpy_helper.from_array(np.array(1.0 / sampling_rate_hz, dtype=np.float32), "per_sample_s"),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "column_shape"),
    ]
    nodes = [
        helper.make_node("Mul", ["waveform", "waveform"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["energy"], axes=[1], keepdims=1),
        helper.make_node("Add", ["energy", "epsilon"], ["energy_safe"]),
        helper.make_node("Log", ["energy_safe"], ["log_energy"]),
        helper.make_node("Abs", ["waveform"], ["magnitude"]),
        helper.make_node("ReduceMax", ["magnitude"], ["peak"], axes=[1], keepdims=1),
        helper.make_node("Cast", ["lengths"], ["lengths_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["lengths_float", "column_shape"], ["length_column"]),
        helper.make_node("Mul", ["length_column", "per_sample_s"], ["duration_s"]),
        helper.make_node("Concat", ["log_energy", "peak", "duration_s"], ["features"], axis=1),
    ]
    return nodes, constants


def _linear_head(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    name: str,
    size: int,
    activation: str | None,
    rng: np.random.Generator,
) -> None:
    weight = (0.2 * rng.standard_normal((FEATURES, size))).astype(np.float32)
    bias = rng.standard_normal(size).astype(np.float32)
    initializers += [
        numpy_helper.from_array(weight, f"{name}_weight"),
        numpy_helper.from_array(bias, f"{name}_bias"),
    ]
    linear_output = f"{name}_linear" if activation else name
    nodes += [
        helper.make_node("MatMul", ["features", f"{name}_weight"], [f"{name}_product"]),
        helper.make_node("Add", [f"{name}_product", f"{name}_bias"], [linear_output]),
    ]
    if activation:
        nodes.append(helper.make_node(activation, [linear_output], [name]))


def _attention_nodes(nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto]) -> None:
    for name, value in (
        ("attention_starts", [0]),
        ("attention_ends", [2**62]),
        ("attention_axes", [1]),
        ("attention_steps", [ATTENTION_STRIDE_SAMPLES]),
    ):
        initializers.append(numpy_helper.from_array(np.array(value, dtype=np.int64), name))
    nodes += [
        helper.make_node(
            "Slice",
            [
                "magnitude",
                "attention_starts",
                "attention_ends",
                "attention_axes",
                "attention_steps",
            ],
            ["frame_magnitude"],
        ),
        helper.make_node("Softmax", ["frame_magnitude"], ["frame_attention"], axis=1),
    ]


def _ensemble_nodes(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    members: int,
    width: int,
    rng: np.random.Generator,
) -> None:
    weight = rng.standard_normal((FEATURES, members * width)).astype(np.float32)
    initializers += [
        numpy_helper.from_array(weight, "member_weight"),
        numpy_helper.from_array(np.array([-1, members, width], dtype=np.int64), "member_shape"),
    ]
    nodes += [
        helper.make_node("MatMul", ["features", "member_weight"], ["member_flat"]),
        helper.make_node("Reshape", ["member_flat", "member_shape"], ["member_logits"]),
    ]


def _tensor_info(name: str, shape: list[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
