"""Leading and trailing silence cut off a clip, exactly as the service does it.

RAVDESS clips are about half silence (0.9 s before and 0.8 s after the sentence on average),
the EmoDB copy about a tenth (``docs/training.md``, "Speech crop"): a model that pools over
every frame then learns the corpora's silence as well as their speech. A recipe with
``[data] speech_crop = true`` trains and is evaluated on the span from the first to the last
detected speech, and its manifest tells the service to analyse the same span
(``windowing.crop_to_speech``). Detection is the service's own (``service.speech.activity``,
WebRTC at the service's default aggressiveness), so training and serving cut the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from service.audio.segment import speech_extent
from service.config import Settings
from service.speech.activity import detect_speech

SERVICE_AGGRESSIVENESS: int = Settings.model_fields["speech_aggressiveness"].default
"""The service's default ``SER_SPEECH_AGGRESSIVENESS``: the toolkit detects speech as a
default deployment does."""


def crop_to_speech(signal: np.ndarray, sampling_rate_hz: int) -> np.ndarray:
    """``signal`` (mono float32 ``(samples,)``) from its first to its last speech, padded as
    the service pads; unchanged when no speech is found."""
    duration_s = signal.size / sampling_rate_hz
    activity = detect_speech(signal, sampling_rate_hz, aggressiveness=SERVICE_AGGRESSIVENESS)
    extent = speech_extent(duration_s, activity.regions)
    if extent is None:
        return signal
    first = round(extent.start_s * sampling_rate_hz)
    end = round(extent.end_s * sampling_rate_hz)
    return np.ascontiguousarray(signal[first:end])


def served_waveforms(
    waveforms: Iterable[np.ndarray], sampling_rate_hz: int, speech_crop: bool
) -> list[np.ndarray]:
    """What the service hands the model for these recordings (cropped when the recipe says)."""
    if not speech_crop:
        return list(waveforms)
    return [crop_to_speech(waveform, sampling_rate_hz) for waveform in waveforms]
