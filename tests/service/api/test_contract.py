"""schemathesis replays generated requests from ``openapi.yaml`` against the live app: no 5xx,
every status code, content type and body as the document says.

The batch-job routes are left out here (this server has no queue, so they answer the documented
503); ``tests/service/jobs`` covers them against a real Valkey. The "schema-valid data must be
accepted" check is excluded: the schema cannot say that a binary part must be audio, so random
bytes rightly get 415.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SEED = 20261122
MAX_EXAMPLES = 25


def test_live_app_honours_its_openapi_document(base_url: str, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        base_url,
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--exclude-path-regex",
        "^/jobs",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--no-color",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    summary = result.stdout[-3000:]
    print(summary)
    assert result.returncode == 0, summary
