"""Write the OpenAPI document as YAML: `python -m service.api.export_openapi openapi.yaml`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from service.api.app import build_api
from service.metrics import ServiceMetrics


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the routes, independent of which models are loaded."""
    return build_api(ServiceMetrics()).openapi()


def render_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else Path("openapi.yaml")
    target.write_text(render_yaml(openapi_document()), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
