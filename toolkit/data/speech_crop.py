"""Leading and trailing silence cut off a clip, exactly as the service does it.

RAVDESS clips are about half silence (0.9 s before and 0.8 s after the sentence on average),
the EmoDB copy about a tenth (``docs/training.md``, "Speech crop"): a model that pools over
every frame then learns the corpora's silence as well as their speech. Two recipe options use
the crop (``[data]``, ``toolkit/train/config.py``):

- ``speech_crop = true``: training and evaluation see the span from the first to the last
  detected speech, padded by the service's 0.1 s;
- ``serve_crop_to_training_silence = true``: training clips stay whole; evaluation and the
  service cut leading and trailing silence down to the margin the run's training clips had
  on average (:func:`silence_margin_s`), so a recording with more silence around the
  utterance than the model ever saw is brought back to what it learnt on.

Either way the manifest tells the service to cut the same way (``windowing.crop_to_speech``,
``windowing.crop_margin_s``). Detection is the service's own (``service.speech.activity``,
WebRTC at the service's default aggressiveness), so training and serving cut the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from service.audio.segment import SPEECH_PAD_S, Segment, speech_extent
from service.config import Settings
from service.speech.activity import detect_speech

SERVICE_AGGRESSIVENESS: int = Settings.model_fields["speech_aggressiveness"].default
"""The service's default ``SER_SPEECH_AGGRESSIVENESS``: the toolkit detects speech as a
default deployment does."""


def speech_span(signal: np.ndarray, sampling_rate_hz: int, margin_s: float) -> Segment | None:
    """First to last detected speech of ``signal`` (mono ``(samples,)``), widened by
    ``margin_s`` seconds on each side within the clip; ``None`` without speech."""
    duration_s = signal.size / sampling_rate_hz
    activity = detect_speech(signal, sampling_rate_hz, aggressiveness=SERVICE_AGGRESSIVENESS)
    return speech_extent(duration_s, activity.regions, pad_s=margin_s)


def crop_to_speech(
    signal: np.ndarray, sampling_rate_hz: int, margin_s: float = SPEECH_PAD_S
) -> np.ndarray:
    """``signal`` (mono float32 ``(samples,)``) from its first to its last speech, with
    ``margin_s`` seconds kept on each side (default: the service's padding); unchanged when no
    speech is found."""
    extent = speech_span(signal, sampling_rate_hz, margin_s)
    if extent is None:
        return signal
    first = round(extent.start_s * sampling_rate_hz)
    end = round(extent.end_s * sampling_rate_hz)
    return np.ascontiguousarray(signal[first:end])


def silence_margin_s(
    waveforms: Iterable[np.ndarray], sampling_rate_hz: int, quantile: float | None = None
) -> float:
    """Silence (seconds) before the first and after the last detected speech of the clips,
    both sides pooled: the mean, or with ``quantile`` (0-1) that quantile of the sides; clips
    without detected speech are left out, and 0.0 is returned when no clip has any."""
    sides_s: list[float] = []
    for waveform in waveforms:
        extent = speech_span(waveform, sampling_rate_hz, margin_s=0.0)
        if extent is not None:
            sides_s += [extent.start_s, waveform.size / sampling_rate_hz - extent.end_s]
    if not sides_s:
        return 0.0
    return float(np.mean(sides_s) if quantile is None else np.quantile(sides_s, quantile))


def served_waveforms(
    waveforms: Iterable[np.ndarray], sampling_rate_hz: int, crop_margin_s: float | None
) -> list[np.ndarray]:
    """What the service hands the model for these recordings: cropped to their speech with
    ``crop_margin_s`` seconds on each side, or whole when it is ``None``."""
    if crop_margin_s is None:
        return list(waveforms)
    return [crop_to_speech(waveform, sampling_rate_hz, crop_margin_s) for waveform in waveforms]
