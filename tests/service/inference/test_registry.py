"""Picking models by name, by name@version, and the default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.errors import ModelLoadError, UnknownModel
from service.inference.registry import load_registry
from tests.onnx_factory import TinyModelSpec, build_model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("registry")
    for version in ("1.2.0", "1.10.0", "1.9.3"):
        build_model(directory, TinyModelSpec(name="tiny", version=version))
    build_model(directory, TinyModelSpec(name="other", version="0.1.0"))
    return directory


def test_name_resolves_to_latest_version_in_natural_order(models_dir: Path) -> None:
    registry = load_registry(models_dir)
    assert registry.resolve("tiny").key == "tiny@1.10.0"
    assert registry.resolve("tiny@1.9.3").key == "tiny@1.9.3"
    assert len(registry) == 4


def test_default_is_first_name_unless_configured(models_dir: Path) -> None:
    assert load_registry(models_dir).default.key == "other@0.1.0"
    assert load_registry(models_dir, "tiny@1.2.0").resolve(None).key == "tiny@1.2.0"


def test_shipped_default_file_picks_the_default_and_setting_overrides_it(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        build_model(tmp_path, TinyModelSpec(name=name, version="1.0.0"))
    (tmp_path / "DEFAULT").write_text("\n  beta  \n", encoding="utf-8")
    assert load_registry(tmp_path).default.key == "beta@1.0.0"
    assert load_registry(tmp_path, "alpha").default.key == "alpha@1.0.0"
    (tmp_path / "DEFAULT").write_text("gamma\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"default model: model 'gamma'"):
        load_registry(tmp_path)


def test_unknown_model_lists_the_available_ones(models_dir: Path) -> None:
    with pytest.raises(UnknownModel, match=r"'nope' is not served; choose one of: other@0.1.0"):
        load_registry(models_dir).resolve("nope")


def test_unknown_default_stops_start_up(models_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"default model: model 'missing'"):
        load_registry(models_dir, "missing")


def test_empty_or_missing_directory_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"models directory missing"):
        load_registry(tmp_path / "absent")
    with pytest.raises(ModelLoadError, match=r"no <name>/<version>/manifest.json found"):
        load_registry(tmp_path)


def test_directory_must_match_manifest(tmp_path: Path) -> None:
    model_dir = build_model(tmp_path, TinyModelSpec(name="tiny", version="1.0.0"))
    shutil.move(model_dir, tmp_path / "tiny" / "2.0.0")
    with pytest.raises(ModelLoadError, match=r"do not match the directory \('tiny', '2.0.0'\)"):
        load_registry(tmp_path)
