"""schemathesis replays generated requests from ``openapi.yaml`` against the live app: no 5xx,
every status code, content type, header and body as the document says.

The job routes are left out here (this server has no queue, so they would only answer the
documented 503); ``tests/service/jobs/test_contract.py`` runs the same checks on them against a
real Valkey and workers. The checks that cannot hold are switched off per operation in
``schemathesis.toml`` beside this file, with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from tests.service.api.contract import assert_schemathesis_passes, schemathesis_command

CONFIG: Final = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES: Final = 25


def test_live_app_honours_its_openapi_document(base_url: str, tmp_path: Path) -> None:
    options = ["--exclude-path-regex", "^/jobs", "--phases", "examples,coverage,fuzzing"]
    command = schemathesis_command(base_url, MAX_EXAMPLES, options, config=CONFIG)
    assert_schemathesis_passes(command, tmp_path)
