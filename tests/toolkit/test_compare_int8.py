"""The int8 comparison table (``toolkit compare-int8``)."""

from __future__ import annotations

from toolkit.compare_int8 import markdown_table


def test_markdown_table_has_one_row_per_graph_and_percent_cells() -> None:
    row = {
        "file_mib": 35.12,
        "latency_ms_per_3s_clip_1_thread": {"median": 40.0, "min": 31.25},
        "ua": {
            "clean": {"emodb": 0.8, "ravdess": 0.675},
            "white_10dB": {"emodb": 0.5, "ravdess": 0.6},
        },
    }
    report = {"runs": ["fold1"], "graphs": {"fp32": row, "int8-dynamic": row}}
    lines = markdown_table(report).splitlines()
    assert lines[0].startswith("| graph | MiB | ms / 3 s clip (min) | emodb clean | ravdess clean")
    assert len(lines) == 4
    assert lines[2] == "| fp32 | 35.1 | 31.2 | 80.0 | 67.5 | 50.0 | 60.0 |"
