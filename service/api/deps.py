"""``Annotated`` dependency aliases: what a route needs, taken from the app's state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Query, Request

from service.config import Settings
from service.inference.batching import SegmentRunner
from service.inference.registry import ModelRegistry
from service.inference.session import OnnxModel
from service.logs import request_id_var
from service.metrics import ServiceMetrics

MODEL_REFERENCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}(@[A-Za-z0-9][A-Za-z0-9_.+-]{0,63})?$"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def _metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


def _selected_model(
    registry: Annotated[ModelRegistry, Depends(_registry)],
    model: Annotated[
        str | None,
        Query(
            description="Model as `name` (latest version) or `name@version`; default if omitted",
            pattern=MODEL_REFERENCE_PATTERN,
            max_length=129,
        ),
    ] = None,
) -> OnnxModel:
    return registry.resolve(model)


def _model_runner(
    request: Request, model: Annotated[OnnxModel, Depends(_selected_model)]
) -> SegmentRunner:
    """The selected model's micro-batcher (``service/api/runners.py``)."""
    runners: Mapping[str, SegmentRunner] = request.app.state.runners
    return runners[model.key]


def _request_id() -> str:
    return request_id_var.get() or ""


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
MetricsDep = Annotated[ServiceMetrics, Depends(_metrics)]
SelectedModelDep = Annotated[OnnxModel, Depends(_selected_model)]
ModelRunnerDep = Annotated[SegmentRunner, Depends(_model_runner)]
RequestIdDep = Annotated[str, Depends(_request_id)]
