"""What a worker process loads once and its forked work horses share: settings, models, store."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import Settings
from service.errors import ModelUnavailable, UnknownModel
from service.inference.registry import ModelRegistry
from service.inference.session import OnnxModel
from service.jobs.models import ModelChoice
from service.jobs.store import JobStore


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    registry: ModelRegistry
    store: JobStore

    def model_for(self, choice: ModelChoice) -> OnnxModel:
        """The loaded model with exactly the name, version and sha256 the job was submitted for.

        Raises:
            ModelUnavailable: this worker does not serve that model file.
        """
        try:
            model = self.registry.resolve(choice.key)
        except UnknownModel as exc:
            raise ModelUnavailable(
                f"the worker does not serve {choice.key}; deploy it to the workers' "
                "SER_MODELS_DIR or resubmit with a served model"
            ) from exc
        if model.manifest.sha256 != choice.sha256:
            raise ModelUnavailable(
                f"the worker's {choice.key} has sha256 {model.manifest.sha256[:12]}..., the job "
                f"was submitted for {choice.sha256[:12]}...; deploy the same model file to the "
                "API and the workers"
            )
        return model


_context: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    """Make ``context`` the one the tasks of this process (and its forks) use."""
    global _context
    _context = context


def current() -> WorkerContext:
    """The installed context.

    Raises:
        RuntimeError: the tasks run outside ``python -m service.jobs.worker``.
    """
    if _context is None:
        raise RuntimeError("no worker context: run tasks with `python -m service.jobs.worker`")
    return _context
