"""``bench.op_profile``: ONNX Runtime's kernel trace summed per operator, warm-up left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from bench.op_profile import kernel_ms_by_operator, profile
from service.inference.manifest import read_manifest
from tests.onnx_factory import build_model


def _kernel(op: str, ts_us: int, dur_us: int) -> dict[str, object]:
    return {
        "cat": "Node",
        "name": f"n_{op}_kernel_time",
        "ts": ts_us,
        "dur": dur_us,
        "args": {"op_name": op},
    }


def _run(ts_us: int, dur_us: int) -> dict[str, object]:
    return {"cat": "Session", "name": "model_run", "ts": ts_us, "dur": dur_us}


def test_kernel_times_are_summed_per_operator_after_the_warm_up_calls() -> None:
    trace = [
        _run(0, 100),
        _kernel("Conv", 10, 90),  # warm-up call: not counted
        _run(200, 100),
        _kernel("Conv", 210, 3000),
        _kernel("MatMul", 260, 1000),
        _run(400, 100),
        _kernel("Conv", 410, 1000),
        _kernel("MatMul", 460, 1000),
        {"cat": "Node", "name": "n_fence_before", "ts": 420, "dur": 5000},  # not a kernel
    ]
    rows = kernel_ms_by_operator(trace, calls=2, skip_calls=1)
    assert [row.operator for row in rows] == ["Conv", "MatMul"]
    assert rows[0].ms_per_call == pytest.approx(2.0)  # (3000 + 1000) us over 2 calls
    assert rows[1].ms_per_call == pytest.approx(1.0)
    assert rows[0].share == pytest.approx(4000 / 6000)


def test_a_real_profile_names_the_operators_of_the_graph(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path / "tiny")
    graph = model_dir / read_manifest(model_dir).file
    waveform = np.random.default_rng(0).normal(0, 0.1, (1, 16_000)).astype(np.float32)
    rows = profile(graph, waveform, np.array([16_000], dtype=np.int64), calls=3)
    assert rows and all(row.ms_per_call >= 0 for row in rows)
    assert sum(row.share for row in rows) == pytest.approx(1.0)
    graph_operators = {node.op_type for node in onnx.load(str(graph)).graph.node}
    profiled = {row.operator for row in rows}
    # ONNX Runtime fuses some nodes (Gemm + activation -> FusedGemm); most keep their type
    assert len(profiled & graph_operators) >= len(graph_operators) // 2
