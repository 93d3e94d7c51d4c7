"""Models listing, health, readiness, metrics, request ids and the OpenAPI contract, over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.api.export_openapi import openapi_document, render_yaml

ROOT = Path(__file__).resolve().parents[3]


def test_models_lists_every_version_with_the_default(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    models = {(m["name"], m["version"]): m for m in response.json()["models"]}
    assert set(models) == {("tiny", "1.0.0"), ("tiny", "1.10.0"), ("ensemble", "0.1.0")}
    assert models[("tiny", "1.10.0")]["default"] is True
    assert models[("tiny", "1.0.0")]["default"] is False
    tiny = models[("tiny", "1.10.0")]
    assert tiny["labels"] == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert tiny["heads"] == ["affect", "attention", "categorical", "distribution", "octant"]
    assert len(tiny["sha256"]) == 64 and tiny["metrics"] == {"toy_ua": 0.5}


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert "3 loaded, default tiny@1.10.0" in ready.json()["checks"]["models"]


def test_request_id_is_echoed_or_made(client: httpx.Client) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces;\\x"})
    assert made.headers["X-Request-ID"] != "bad id with spaces"
    assert len(made.headers["X-Request-ID"]) == 32


def test_metrics_count_requests_by_route_and_status(client: httpx.Client) -> None:
    client.get("/healthz")
    client.get("/no-such-route")
    text = client.get("/metrics").text
    assert 'ser_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'ser_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert "ser_http_request_duration_seconds_bucket" in text
    assert 'ser_model_info{default="true",name="tiny",sha256=' in text
    assert 'ser_input_errors_total{code="not_found"}' in text


def test_unknown_route_and_method_are_problems(client: httpx.Client) -> None:
    missing = client.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    wrong_method = client.get("/predict")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert wrong_method.headers["Allow"] == "POST"


def test_allow_names_every_method_of_a_path_served_by_several_routes(client: httpx.Client) -> None:
    """GET and DELETE /jobs/{job_id} are two routes; Starlette alone would name only GET."""
    wrong_method = client.request("PATCH", "/jobs/" + "0" * 32)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert wrong_method.headers["Allow"] == "DELETE, GET"
    assert client.request("PUT", "/jobs").headers["Allow"] == "POST"


def test_openapi_yaml_matches_the_app() -> None:
    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == render_yaml(openapi_document()), (
        "openapi.yaml is stale: run `make openapi` and commit it"
    )


def test_openapi_documents_the_upload_and_problem_responses() -> None:
    predict = openapi_document()["paths"]["/predict"]["post"]
    form = predict["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert "application/problem+json" in predict["responses"]["422"]["content"]
