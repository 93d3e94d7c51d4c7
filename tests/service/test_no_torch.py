"""The service never imports torch (only the toolkit does): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

SERVICE_ENTRY_MODULES = (
    "service.api.app",
    "service.__main__",
    "service.jobs.worker",
    "service.api.export_openapi",
)


def test_service_modules_do_not_import_torch() -> None:
    imports = "; ".join(f"import {module}" for module in SERVICE_ENTRY_MODULES)
    probe = f"{imports}; import sys; print(sorted(m for m in sys.modules if m.startswith('torch')))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
