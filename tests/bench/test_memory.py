"""``python -m bench.memory`` against a real service (a tiny model): every request answered,
a memory reading after each concurrency, the peak never below the current value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.memory import main
from tests.onnx_factory import build_model


def test_reports_peak_memory_after_each_concurrency(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_model(tmp_path / "models")
    out = tmp_path / "memory.json"
    main(
        [
            "--models-dir", str(tmp_path / "models"),
            "--data-dir", str(data_dir),
            "--duration-s", "3",
            "--concurrency", "1,2",
            "--requests-per-stream", "1",
            "--service-env", "SER_EMBEDDED_WORKERS=0",
            "--out", str(out),
        ]
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert [(c["concurrency"], c["ok"], c["requests"]) for c in report["cases"]] == [
        (1, 1, 1),
        (2, 2, 2),
    ]
    peaks = [c["memory_mib"]["peak_rss_mib"] for c in report["cases"]]
    assert peaks == sorted(peaks) and peaks[0] >= report["ready_memory_mib"]["rss_mib"] > 0
    assert all(
        c["memory_mib"]["peak_rss_mib"] >= c["memory_mib"]["rss_mib"] for c in report["cases"]
    )
    alone = report["cases"][0]  # the service's stage timings are read at concurrency 1 only
    assert alone["latency_median_ms"] > alone["inference_median_ms"] > 0
    assert all(c["latency_median_ms"] > 0 for c in report["cases"])
    assert "| 2 | 2 / 2 |" in capsys.readouterr().out
