"""Run the schemathesis CLI against a live server and ``openapi.yaml``, for the contract tests.

One place for what every contract run shares: the document, the seed, the phases, the
per-request timeout and how a failure is reported; each test adds its operations and its
narrow exclusions.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[3]
SEED: Final = 20261122
REQUEST_TIMEOUT_S: Final = 30
RUN_TIMEOUT_S: Final = 600


def schemathesis_command(
    base_url: str, max_examples: int, options: Sequence[str], config: Path | None = None
) -> list[str]:
    """``schemathesis run`` of ``openapi.yaml`` against ``base_url``.

    Every check runs unless ``options`` or ``config`` say otherwise (schemathesis's default; a
    ``--checks`` option would override the per-operation settings of ``config``).

    Args:
        base_url: the live server, ``http://127.0.0.1:<port>``.
        max_examples: generated cases per operation in the fuzzing phase (the coverage phase
            generates what the schema defines, whatever this says).
        options: the run's own filters, check exclusions and phases.
        config: a ``schemathesis.toml`` with per-operation settings.
    """
    config_options = [] if config is None else ["--config-file", str(config)]
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        *config_options,
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        base_url,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--no-color",
        "--report",
        "har",
        "--report-dir",
        ".",
        *options,
    ]


def assert_schemathesis_passes(command: Sequence[str], work_dir: Path) -> str:
    """Run ``command`` in ``work_dir``; its summary. The whole output is kept in
    ``work_dir/schemathesis.txt`` (the assertion message shows only the end), every request
    and response in ``work_dir/har-*.json``.

    Raises:
        AssertionError: schemathesis found a failure (the summary says which).
    """
    result = subprocess.run(
        list(command), cwd=work_dir, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    (work_dir / "schemathesis.txt").write_text(result.stdout + result.stderr, encoding="utf-8")
    summary = result.stdout[-4000:] + result.stderr[-2000:]
    print(summary)
    assert result.returncode == 0, summary
    return summary
