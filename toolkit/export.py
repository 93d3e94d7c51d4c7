"""ONNX export of a trained ``SerModel``, PyTorch/ONNX parity check, int8 quantisation
(static or dynamic).

The graph follows docs/model-contract.md: inputs ``waveform`` float32 ``(batch, samples)`` and
``lengths`` int64 ``(batch,)``; outputs ``logits``, ``distribution_logits``, ``vad``,
``octant_logits``, ``frame_attention``; batch and sample axes dynamic. Exported with
``torch.onnx.export(..., dynamo=True)``.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from service.inference.batching import pad_batch
from toolkit.model.ser_model import ONNX_INPUT_NAMES, ONNX_OUTPUT_NAMES, OnnxSerModel, SerModel

OPSET = 18
"""ONNX opset of the dynamo exporter's default in torch 2.11."""
MIN_SAMPLES = 800
"""Shortest waveform the exported graph is traced for: 50 ms (the log-mel needs 400 samples)."""
MAX_SAMPLES = 16_000 * 600
"""Longest waveform declared to the exporter: 10 minutes at 16 kHz."""
MAX_BATCH = 1024
PREDICT_BATCH = 16
"""Clips per ONNX Runtime call when predicting a clip list (sorted by length)."""
PARITY_TOLERANCE = 1e-4
"""Largest allowed absolute difference between PyTorch and ONNX Runtime on any head."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def example_inputs(seconds: Sequence[float] = (3.0, 2.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-padded batch of noise clips of the given durations (export tracing input)."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([int(s * 16_000) for s in seconds], dtype=torch.int64)
    waveform = 0.1 * torch.randn(len(seconds), int(lengths.max()), generator=generator)
    waveform = waveform * (torch.arange(waveform.shape[1])[None, :] < lengths[:, None])
    return waveform, lengths


def export_onnx(model: SerModel, path: Path) -> Path:
    """Export ``model`` (eval mode) to a single self-contained ONNX file at ``path``."""
    model.eval()
    wrapper = OnnxSerModel(model).eval()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    samples = torch.export.Dim("samples", min=MIN_SAMPLES, max=MAX_SAMPLES)
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper,
            example_inputs(),
            dynamo=True,
            opset_version=OPSET,
            input_names=list(ONNX_INPUT_NAMES),
            output_names=list(ONNX_OUTPUT_NAMES),
            dynamic_shapes={"waveform": {0: batch, 1: samples}, "lengths": {0: batch}},
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    graph = onnx.load(str(path))
    strip_path_metadata(graph)
    onnx.save(graph, str(path))
    onnx.checker.check_model(str(path))
    return path


PATH_METADATA_KEYS = ("pkg.torch.onnx.stack_trace",)
"""Node metadata the dynamo exporter writes that holds absolute source paths (the Python stack
of every node: ``File "/where/the/checkout/is/toolkit/model/...", line ...``). Kept, it makes
the graph's bytes depend on where the repository was cloned: a run retrained in another
directory gave the same weights and outputs but another sha256 (docs/training.md, "Reproducing
the shipped model")."""


def strip_path_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove ``PATH_METADATA_KEYS`` from every node of ``model`` and of its functions, in
    place; returns ``model``. Weights, operators and outputs are untouched."""
    nodes = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    for node in nodes:
        kept = [entry for entry in node.metadata_props if entry.key not in PATH_METADATA_KEYS]
        if len(kept) != len(node.metadata_props):
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
    return model


def graph_sha256(path: Path) -> str:
    """sha256 of the graph at ``path`` without ``PATH_METADATA_KEYS``: equal for two files
    that differ only in where they were exported from."""
    model = strip_path_metadata(onnx.load(str(path), load_external_data=False))
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(
    sess: ort.InferenceSession, waveform: np.ndarray, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """Every output of the graph by name for one padded batch."""
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, {"waveform": waveform.astype(np.float32), "lengths": lengths})
    return dict(zip(names, values, strict=True))


@torch.no_grad()
def parity(model: SerModel, onnx_path: Path, waveforms: Sequence[np.ndarray]) -> dict[str, float]:
    """Max absolute difference per output between PyTorch and ONNX Runtime.

    Checks one zero-padded batch of all ``waveforms`` and each clip alone, and also that
    each clip alone matches its row of the padded batch in ONNX (padding invariance). A
    non-finite output on either side counts as an infinite difference.
    """
    sess = session(onnx_path)
    wrapper = OnnxSerModel(model).eval()
    diffs = {name: 0.0 for name in ONNX_OUTPUT_NAMES}
    diffs["padding_invariance"] = 0.0
    batch, lengths = pad_batch(waveforms)
    batched = run_onnx(sess, batch, lengths)
    cases = [(batch, lengths)] + [pad_batch([w]) for w in waveforms]
    for index, (wave, lens) in enumerate(cases):
        reference = wrapper(torch.from_numpy(wave), torch.from_numpy(lens))
        got = run_onnx(sess, wave, lens)
        for name, ref in zip(ONNX_OUTPUT_NAMES, reference, strict=True):
            gap = float(np.abs(got[name] - ref.numpy()).max())
            diffs[name] = max(diffs[name], gap if np.isfinite(gap) else float("inf"))
        if index > 0:
            row = batched["logits"][index - 1]
            gap = float(np.abs(got["logits"][0] - row).max())
            gap = gap if np.isfinite(gap) else float("inf")
            diffs["padding_invariance"] = max(diffs["padding_invariance"], gap)
    return diffs


def predict_onnx(model_path: Path, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of ``model_path`` for every clip (batched by length), in input order."""
    sess = session(model_path)
    order = np.argsort([w.size for w in waveforms], kind="stable")
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(order), PREDICT_BATCH):
        chunk = [waveforms[int(i)] for i in order[start : start + PREDICT_BATCH]]
        for name, value in run_onnx(sess, *pad_batch(chunk)).items():
            if name != "frame_attention":
                parts.setdefault(name, []).append(value)
    inverse = np.argsort(order, kind="stable")
    return {name: np.concatenate(values)[inverse] for name, values in parts.items()}


def check_parity(diffs: dict[str, float], tolerance: float = PARITY_TOLERANCE) -> None:
    """Raise ``AssertionError`` naming the heads whose difference exceeds ``tolerance``."""
    bad = {name: value for name, value in diffs.items() if value > tolerance}
    if bad:
        raise AssertionError(f"ONNX parity above {tolerance}: {bad}")


QUANTISED_OPS = ("Conv", "MatMul", "Gemm")
"""Operators whose weights are quantised (only nodes with a constant weight input)."""
FRONTEND_MARKER = "frontend"
"""Nodes reading front-end constants (DFT basis, mel filterbank) stay float: the log-mel's
dynamic range does not survive 8 bits (a first dynamically quantised model lost ~30 UA points)."""


def quantisable_nodes(
    model: onnx.ModelProto, op_types: Sequence[str] = QUANTISED_OPS
) -> tuple[list[str], list[str]]:
    """(nodes to quantise, nodes to keep in float) among the ``op_types`` nodes."""
    constants = {init.name for init in model.graph.initializer}
    keep, skip = [], []
    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        weights = [name for name in node.input[1:2] if name in constants]
        if weights and FRONTEND_MARKER not in weights[0]:
            keep.append(node.name)
        else:
            skip.append(node.name)
    return keep, skip


class _Calibration:
    """Feeds real clips, one at a time, to ONNX Runtime's static quantiser."""

    def __init__(self, waveforms: Sequence[np.ndarray]) -> None:
        self._items = iter(list(waveforms))

    def get_next(self) -> dict[str, np.ndarray] | None:
        waveform = next(self._items, None)
        if waveform is None:
            return None
        return {
            "waveform": waveform[None, :].astype(np.float32),
            "lengths": np.array([waveform.size], dtype=np.int64),
        }


INT8_METHODS = ("static", "dynamic", "dynamic_matmul")
"""How ``quantise_int8`` quantises: ``static`` fixes every activation range from calibration
clips (fastest; fine for the compact CNN and the frozen Whisper encoder); ``dynamic`` measures
each activation range per call (slower, but keeps fine-tuned transformer layers whose
activations a fixed 8-bit range clips; docs/training.md, "Quantising the fine-tuned encoder");
``dynamic_matmul`` is ``dynamic`` for MatMul / Gemm only, convolutions stay float: ONNX
Runtime's ``ConvInteger`` took 41 % of the truncated Whisper graph's time per 3 s clip, more
than the float convolutions it replaces (docs/training.md, "Truncating the encoder")."""

DYNAMIC_MATMUL_OPS = ("MatMul", "Gemm")
"""The operators ``dynamic_matmul`` quantises."""


def quantise_int8(
    source: Path, target: Path, calibration: Sequence[np.ndarray], method: str = "static"
) -> Path:
    """int8 quantisation of ``source`` into ``target`` with per-channel int8 weights.

    ``static``: QDQ graph whose activation ranges are calibrated on ``calibration`` (real
    clips, MinMax). ``dynamic``: integer MatMul / Conv with activation ranges computed at run
    time; ``calibration`` is unused. ``dynamic_matmul``: the same for MatMul / Gemm only.
    Either way only nodes with constant weights are quantised, and not the front end's. The
    exporter's ``value_info`` entries are dropped first: ONNX shape inference, which the
    quantiser runs, rejects one of them ("Inferred shape and existing shape differ"); they are
    optional hints and ONNX Runtime re-infers shapes at load time.

    Raises:
        ValueError: ``method`` is not one of ``INT8_METHODS``.
    """
    if method not in INT8_METHODS:
        raise ValueError(f"int8 method {method!r} is not one of {INT8_METHODS}")
    target.parent.mkdir(parents=True, exist_ok=True)
    graph = onnx.load(str(source))
    del graph.graph.value_info[:]
    nodes, _ = quantisable_nodes(
        graph, DYNAMIC_MATMUL_OPS if method == "dynamic_matmul" else QUANTISED_OPS
    )
    stripped = target.with_suffix(".stripped.onnx")
    onnx.save(graph, str(stripped))
    try:
        if method == "static":
            _quantise_static(stripped, target, nodes, calibration)
        else:
            _quantise_dynamic(stripped, target, nodes)
    finally:
        stripped.unlink(missing_ok=True)
    return target


def int8_method_of(path: Path) -> str:
    """The ``INT8_METHODS`` entry an int8 graph was made with, read from the graph itself:
    dynamic graphs quantise activations with ``DynamicQuantizeLinear``, and only ``dynamic``
    ones have ``ConvInteger`` (every model of this toolkit has a quantisable convolution)."""
    operators = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    if "DynamicQuantizeLinear" not in operators:
        return "static"
    return "dynamic" if "ConvInteger" in operators else "dynamic_matmul"


def _quantise_static(
    source: Path, target: Path, nodes: list[str], calibration: Sequence[np.ndarray]
) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    quantize_static(
        str(source),
        str(target),
        _Calibration(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_quantize=nodes,
        calibrate_method=CalibrationMethod.MinMax,
    )


def _quantise_dynamic(source: Path, target: Path, nodes: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # silences the quantiser's generic "run pre-processing" hint
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        )
    finally:
        root.setLevel(level)
