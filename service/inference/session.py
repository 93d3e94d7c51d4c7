"""One ONNX Runtime session per model, built once, checked against its manifest at load time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import onnxruntime as ort

from service.errors import ModelLoadError
from service.inference.manifest import Manifest, read_manifest

DRY_RUN_DURATION_S = 1.0
ROW_PROBE_TOLERANCE: Final = 1e-3
"""Largest change of a row's categorical logits, when another row joins its batch, for which
the rows still count as independent. Float graphs measure 0 (equal-length rows); a dynamically
quantised int8 graph, whose activation ranges are measured over the whole batch, moved the
logits of the default model by 0.077 in this probe."""
PROBE_TONE_HZ: Final = 220.0
HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ModelOutputs:
    """Raw head outputs of one batched call; ``None`` where the model has no such head.

    Shapes: ``categorical_logits`` (batch, C); ``distribution_logits`` (batch, D);
    ``affect`` (batch, 3); ``octant_logits`` (batch, 8); ``attention`` (batch, frames);
    ``ensemble_logits`` (batch, members, C).
    """

    categorical_logits: np.ndarray
    distribution_logits: np.ndarray | None
    affect: np.ndarray | None
    octant_logits: np.ndarray | None
    attention: np.ndarray | None
    ensemble_logits: np.ndarray | None

    def rows(self, start: int, stop: int) -> ModelOutputs:
        """Rows ``start:stop`` of every head (views, no copies)."""
        return ModelOutputs(
            categorical_logits=self.categorical_logits[start:stop],
            distribution_logits=_rows(self.distribution_logits, start, stop),
            affect=_rows(self.affect, start, stop),
            octant_logits=_rows(self.octant_logits, start, stop),
            attention=_rows(self.attention, start, stop),
            ensemble_logits=_rows(self.ensemble_logits, start, stop),
        )


def _rows(value: np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
    return None if value is None else value[start:stop]


class OnnxModel:
    """A validated model: its manifest and a ready ONNX Runtime session."""

    def __init__(self, model_dir: Path, intra_op_threads: int = 1) -> None:
        self.directory = model_dir
        self.manifest: Manifest = read_manifest(model_dir)
        self.path = model_dir / self.manifest.file
        _check_sha256(self.path, self.manifest.sha256)
        self._session = build_session(self.path, intra_op_threads)
        self._head_outputs = self.manifest.heads.output_names()
        _check_graph(self._session, self.manifest, self.path)
        waveform, alone = self._dry_run()
        self.rows_independent: bool = self._rows_are_independent(waveform, alone)
        """Whether a row's outputs stay the same whatever else is in its batch (probed at
        load); the micro-batcher merges concurrent requests only for such models."""

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.manifest.name}@{self.manifest.version}"

    def run(self, waveforms: np.ndarray, lengths: np.ndarray) -> ModelOutputs:
        """Run every head on a zero-padded batch.

        Args:
            waveforms: float32 ``(batch, samples)`` at ``manifest.sampling_rate_hz``.
            lengths: int64 ``(batch,)``, valid samples per row.
        """
        feeds = {self.manifest.inputs.waveform: waveforms.astype(np.float32, copy=False)}
        if self.manifest.inputs.lengths is not None:
            feeds[self.manifest.inputs.lengths] = lengths.astype(np.int64, copy=False)
        names = list(self._head_outputs.values())
        values = dict(zip(names, self._session.run(names, feeds), strict=True))
        by_head = {head: values[output] for head, output in self._head_outputs.items()}
        return ModelOutputs(
            categorical_logits=by_head["categorical"],
            distribution_logits=by_head.get("distribution"),
            affect=by_head.get("affect"),
            octant_logits=by_head.get("octant"),
            attention=by_head.get("attention"),
            ensemble_logits=by_head.get("ensemble"),
        )

    def _dry_run(self) -> tuple[np.ndarray, ModelOutputs]:
        """1 s of quiet noise ``(samples,)`` through every head; the clip and its outputs."""
        samples = int(DRY_RUN_DURATION_S * self.manifest.sampling_rate_hz)
        rng = np.random.default_rng(0)
        waveform = (0.01 * rng.standard_normal(samples)).astype(np.float32)
        try:
            outputs = self.run(waveform[None, :], np.array([samples], dtype=np.int64))
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelLoadError(f"{self.path}: dry run on 1 s of audio failed: {exc}") from exc
        _check_dry_run_shapes(outputs, self.manifest, self.path)
        return waveform, outputs

    def _rows_are_independent(self, quiet: np.ndarray, alone: ModelOutputs) -> bool:
        """The dry run's clip batched with as long a loud tone (no padding): its logits the
        same as alone within ``ROW_PROBE_TOLERANCE``, or not."""
        times_s = np.arange(quiet.size) / self.manifest.sampling_rate_hz
        loud = 0.5 * np.sin(2 * np.pi * PROBE_TONE_HZ * times_s)
        batch = np.stack([quiet, loud]).astype(np.float32)
        together = self.run(batch, np.full(2, quiet.size, dtype=np.int64))
        difference = np.abs(alone.categorical_logits[0] - together.categorical_logits[0])
        return float(difference.max()) <= ROW_PROBE_TOLERANCE


def _check_sha256(path: Path, expected_hex: str) -> None:
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file missing")
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    if digest.hexdigest() != expected_hex.lower():
        raise ModelLoadError(
            f"{path}: sha256 {digest.hexdigest()} does not match the manifest's {expected_hex}; "
            "the file is corrupt or the manifest is stale"
        )


GraphLevel = Literal["basic", "extended", "all"]
_GRAPH_LEVELS: Final[dict[str, ort.GraphOptimizationLevel]] = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class SessionTuning:
    """ONNX Runtime options besides the intra-op thread count (``SER_ONNX_INTRA_OP_THREADS``).

    The defaults were chosen by measurement (``python -m bench.ort_options``; figures and the
    conditions in docs/benchmark.md, "ONNX Runtime session options"), default model, 3 s clips,
    batch 1 and 8: all graph optimisations, the memory arena on and sequential execution were
    fastest or tied; parallel execution (2 inter-op threads) and the arena off were slower.
    Spinning is off: the same speed with one thread, and with two threads on a busy machine
    spinning threads took the cores that the other one needed (1.47x slower vs 1.08x).
    """

    inter_op_threads: int = 1
    graph_level: GraphLevel = "all"
    cpu_mem_arena: bool = True
    parallel_execution: bool = False
    spinning: bool = False


def build_session(
    path: Path, intra_op_threads: int, tuning: SessionTuning | None = None
) -> ort.InferenceSession:
    """A CPU session for ``path`` with ``tuning`` (the measured defaults when ``None``).

    Raises:
        ModelLoadError: ONNX Runtime cannot load the file.
    """
    try:
        options = session_options(intra_op_threads, tuning or SessionTuning())
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise ModelLoadError(f"{path}: not a loadable ONNX model: {exc}") from exc


def session_options(intra_op_threads: int, tuning: SessionTuning) -> ort.SessionOptions:
    """``SessionOptions`` for ``intra_op_threads`` (0: ONNX Runtime picks) and ``tuning``."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = tuning.inter_op_threads
    options.graph_optimization_level = _GRAPH_LEVELS[tuning.graph_level]
    options.enable_cpu_mem_arena = tuning.cpu_mem_arena
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL
        if tuning.parallel_execution
        else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    if not tuning.spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _check_graph(session: ort.InferenceSession, manifest: Manifest, path: Path) -> None:
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    for role, name in (
        ("waveform", manifest.inputs.waveform),
        ("lengths", manifest.inputs.lengths),
    ):
        if name is not None and name not in inputs:
            raise ModelLoadError(
                f"{path}: input node '{name}' ({role}) not in graph {sorted(inputs)}"
            )
    for head, name in manifest.heads.output_names().items():
        if name not in outputs:
            raise ModelLoadError(
                f"{path}: output node '{name}' (head '{head}') not in graph {sorted(outputs)}"
            )
    for head, name, label_count in _labelled_heads(manifest):
        last_dim = outputs[name].shape[-1] if outputs[name].shape else None
        if isinstance(last_dim, int) and last_dim != label_count:
            raise ModelLoadError(
                f"{path}: output node '{name}' (head '{head}') has {last_dim} values per row "
                f"but the manifest lists {label_count} labels"
            )


def _labelled_heads(manifest: Manifest) -> list[tuple[str, str, int]]:
    heads = manifest.heads
    found = [("categorical", heads.categorical.output, len(heads.categorical.labels))]
    for name, head in (
        ("distribution", heads.distribution),
        ("affect", heads.affect),
        ("octant", heads.octant),
    ):
        if head is not None:
            found.append((name, head.output, len(head.labels)))
    if heads.ensemble is not None:
        found.append(("ensemble", heads.ensemble.output, len(heads.categorical.labels)))
    return found


def _check_dry_run_shapes(outputs: ModelOutputs, manifest: Manifest, path: Path) -> None:
    values = {
        "categorical": outputs.categorical_logits,
        "distribution": outputs.distribution_logits,
        "affect": outputs.affect,
        "octant": outputs.octant_logits,
        "ensemble": outputs.ensemble_logits,
    }
    for head, name, label_count in _labelled_heads(manifest):
        value = values[head]
        if value is None or value.shape[0] != 1 or value.shape[-1] != label_count:
            shape = None if value is None else value.shape
            raise ModelLoadError(
                f"{path}: output node '{name}' (head '{head}') returned shape {shape}, "
                f"expected (1, ..., {label_count})"
            )
        if not np.all(np.isfinite(value)):
            raise ModelLoadError(f"{path}: output node '{name}' returned non-finite values")
    if outputs.attention is not None and outputs.attention.ndim != 2:
        raise ModelLoadError(
            f"{path}: output node '{manifest.heads.attention and manifest.heads.attention.output}'"
            f" (head 'attention') must be (batch, frames), got {outputs.attention.shape}"
        )
