"""The edge where exceptions become ``application/problem+json`` responses (RFC 9457)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from service.errors import (
    InvalidParameter,
    MethodNotAllowed,
    RouteNotFound,
    ServiceError,
)
from service.logs import request_id_var
from service.metrics import ServiceMetrics

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://ser.example/problems/"
HTTP_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def problem_response(
    error: ServiceError, instance: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The problem document for ``error``; ``type`` is a stable URI made from its code."""
    body = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "request_id": request_id_var.get(),
        "instance": instance,
    }
    return JSONResponse(
        body, status_code=error.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def install_problem_handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Register the handlers that turn every failure into a problem document."""

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        if exc.status < 500:
            metrics.input_errors_total.labels(code=exc.code).inc()
        return problem_response(exc, request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_service_error(request, InvalidParameter(_describe_validation(exc)))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: ServiceError
        if exc.status_code == 404:
            error = RouteNotFound(f"no route {request.url.path}; GET /openapi.json lists them")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        else:
            error = InvalidParameter(str(exc.detail))
        response = await on_service_error(request, error)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route serves at the request's path.

    Starlette names only the methods of the first route that matches the path, so a path
    served by two routes (``GET`` and ``DELETE /jobs/{job_id}``) would list one of them. Each
    method is tried against the routes' public ``matches`` (FastAPI nests included routers).
    """
    routes = request.app.router.routes
    allowed = [method for method in HTTP_METHODS if _served(routes, request.scope, method)]
    return ", ".join(allowed)


def _served(routes: Sequence[BaseRoute], scope: Scope, method: str) -> bool:
    probe = {**scope, "method": method}
    return any(route.matches(probe)[0] is Match.FULL for route in routes)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
