"""The OpenAPI document's access rules: the optional API keys and the overload answers.

Added to the generated document rather than to each route, so that the rules live where they
are enforced (``auth.py``, ``admission.py``) and every route gets them the same way.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from service.api.admission import LIMITED_ROUTES
from service.api.auth import API_KEY_HEADER, OPEN_PATHS
from service.schemas import Problem

SECURITY_SCHEMES: Final[dict[str, dict[str, str]]] = {
    "bearerApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A key of SER_API_KEYS as `Authorization: Bearer <key>`",
    },
    "headerApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": f"A key of SER_API_KEYS as `{API_KEY_HEADER}: <key>`",
    },
}
OPTIONAL_KEY: Final[list[dict[str, list[str]]]] = [{"bearerApiKey": []}, {"headerApiKey": []}, {}]
"""Either scheme, or none: keys are required only when the operator sets SER_API_KEYS."""
_UNAUTHORIZED: Final = "API key missing or not valid, when SER_API_KEYS is set (unauthorized)"
_OVERLOADED: Final = "too busy, retry after Retry-After seconds (overloaded, request_timeout)"


def install_access_document(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the key schemes, 401s and the limited routes' 503s."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_access(build())
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def document_access(document: dict[str, Any]) -> None:
    """Edit ``document`` in place."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = OPTIONAL_KEY
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _document_operation(path, method.upper(), operation)


def _document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if path in OPEN_PATHS:
        operation["security"] = []
    else:
        responses["401"] = _problem(_UNAUTHORIZED)
    if (method, path) in LIMITED_ROUTES:
        existing = responses.get("503")
        if existing is None:
            responses["503"] = _problem(_OVERLOADED[0].upper() + _OVERLOADED[1:])
        else:
            existing["description"] = f"{existing['description']}; or {_OVERLOADED}"


def _problem(description: str) -> dict[str, Any]:
    schema = Problem.model_json_schema()
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}
