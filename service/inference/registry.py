"""All models under ``models/<name>/<version>/``, loaded once; requests pick one by name.

The registry is the only way from a request's ``?model=`` text to a model: the text is looked
up in a dictionary built at start-up, never joined into a file path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from service.errors import ModelLoadError, UnknownModel
from service.inference.manifest import MANIFEST_FILE_NAME
from service.inference.session import OnnxModel

_VERSION_PART = re.compile(r"(\d+)|(\D+)")
DEFAULT_FILE_NAME = "DEFAULT"
"""``models/DEFAULT`` names the default model (``name`` or ``name@version``) that ships with the
models; ``SER_DEFAULT_MODEL`` overrides it; without either, the first name alphabetically."""


class ModelRegistry:
    """Loaded models by name and version, with a default."""

    def __init__(self, models: list[OnnxModel], default_key: str | None = None) -> None:
        if not models:
            raise ModelLoadError("no models loaded: put one under models/<name>/<version>/")
        self._by_key = {model.key: model for model in models}
        self._latest = _latest_by_name(models)
        self.default = self._pick_default(default_key)

    def resolve(self, reference: str | None) -> OnnxModel:
        """Find ``name`` (latest version) or ``name@version``; ``None`` gives the default.

        Raises:
            UnknownModel: no such model; the message lists the available ones.
        """
        if reference is None or reference == "":
            return self.default
        model = self._by_key.get(reference) or self._latest.get(reference)
        if model is None:
            available = ", ".join(sorted(self._by_key))
            raise UnknownModel(
                f"model '{reference[:80]}' is not served; choose one of: {available} "
                "(GET /models lists them)"
            )
        return model

    def __iter__(self) -> Iterator[OnnxModel]:
        return iter(sorted(self._by_key.values(), key=lambda model: model.key))

    def __len__(self) -> int:
        return len(self._by_key)

    def _pick_default(self, default_key: str | None) -> OnnxModel:
        if default_key is None:
            return self._latest[min(self._latest)]
        try:
            return self.resolve(default_key)
        except UnknownModel as exc:
            raise ModelLoadError(f"default model: {exc.detail}") from exc


def load_registry(
    models_dir: Path, default_key: str | None = None, intra_op_threads: int = 1
) -> ModelRegistry:
    """Load and validate every ``models_dir/<name>/<version>/manifest.json``.

    Raises:
        ModelLoadError: the directory is missing or empty, or any model breaks its contract.
    """
    if not models_dir.is_dir():
        raise ModelLoadError(f"{models_dir}: models directory missing (set SER_MODELS_DIR)")
    model_dirs = sorted(path.parent for path in models_dir.glob(f"*/*/{MANIFEST_FILE_NAME}"))
    models = [OnnxModel(model_dir, intra_op_threads) for model_dir in model_dirs]
    if not models:
        raise ModelLoadError(f"{models_dir}: no <name>/<version>/{MANIFEST_FILE_NAME} found")
    _check_directory_names(models)
    return ModelRegistry(models, default_key or shipped_default(models_dir))


def shipped_default(models_dir: Path) -> str | None:
    """The key in ``models_dir/DEFAULT`` (first non-empty line), or ``None`` without the file."""
    path = models_dir / DEFAULT_FILE_NAME
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return next((line for line in lines if line), None)


def _check_directory_names(models: list[OnnxModel]) -> None:
    for model in models:
        expected = (model.manifest.name, model.manifest.version)
        found = (model.directory.parent.name, model.directory.name)
        if expected != found:
            raise ModelLoadError(
                f"{model.directory / MANIFEST_FILE_NAME}: name/version {expected} do not match "
                f"the directory {found}"
            )


def _latest_by_name(models: list[OnnxModel]) -> dict[str, OnnxModel]:
    latest: dict[str, OnnxModel] = {}
    for model in sorted(models, key=lambda model: _version_key(model.manifest.version)):
        latest[model.manifest.name] = model
    return latest


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Natural sort key: ``1.10.0`` after ``1.9.0``."""
    return tuple(
        (int(number), "") if number else (-1, text)
        for number, text in _VERSION_PART.findall(version)
    )
