"""``GET /models``: what can be asked for with ``?model=``."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import RegistryDep
from service.api.presenters import model_info
from service.schemas import ModelList

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, summary="Models served")
async def list_models(registry: RegistryDep) -> ModelList:
    """Every loaded model with its labels, heads, windowing and headline metrics."""
    return ModelList(models=[model_info(model, model is registry.default) for model in registry])
