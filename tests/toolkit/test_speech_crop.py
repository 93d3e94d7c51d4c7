"""Speech crop: the toolkit trains on exactly the span the service analyses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from service.audio.segment import SPEECH_PAD_S
from service.config import Settings
from service.inference.session import OnnxModel
from service.pipeline import analyse
from tests.data_paths import ravdess_clip
from tests.onnx_factory import TinyModelSpec, build_model
from tests.service.api.conftest import real_speech_wav
from toolkit import evaluate as evaluate_module
from toolkit.crop_share import crop_shares, markdown
from toolkit.data.speech_crop import (
    crop_to_speech,
    served_waveforms,
    silence_margin_s,
    speech_span,
)
from toolkit.data.types import Utterance
from toolkit.evaluate import PAD_S, RunData, padded_waveforms, run_predictions
from toolkit.train.dataset import ClipSet
from toolkit.train.plan import RunSpec

RAVDESS_CLIP = "03-01-05-02-01-01-01.flac"  # angry, 0.9 s of silence before the sentence


def _served_analysis(
    tmp_path: Path, crop: bool, margin_s: float = SPEECH_PAD_S
) -> tuple[np.ndarray, float, float]:
    spec = TinyModelSpec(window_s=6.0, hop_s=3.0, crop_to_speech=crop, crop_margin_s=margin_s)
    model_dir = build_model(tmp_path / f"crop{crop}{margin_s}", spec)
    analysis = analyse(
        real_speech_wav(RAVDESS_CLIP), OnnxModel(model_dir), Settings(models_dir=tmp_path)
    )
    (segment,) = analysis.segments
    return analysis.signal, segment.start_s, segment.end_s


@pytest.mark.parametrize("margin_s", [SPEECH_PAD_S, 0.4])
def test_service_analyses_the_span_the_toolkit_trains_on(tmp_path: Path, margin_s: float) -> None:
    signal, rate_hz = soundfile.read(ravdess_clip(RAVDESS_CLIP), dtype="float32")
    cropped = crop_to_speech(signal, rate_hz, margin_s)
    served, start_s, end_s = _served_analysis(tmp_path, crop=True, margin_s=margin_s)
    assert start_s > 0.1 and end_s < signal.size / rate_hz - 0.1, "silence is dropped"
    first, end = round(start_s * rate_hz), round(end_s * rate_hz)
    np.testing.assert_allclose(served[first:end], cropped, atol=1e-4)  # WAV is 16-bit


def test_a_model_without_the_flag_still_gets_the_whole_short_recording(tmp_path: Path) -> None:
    served, start_s, end_s = _served_analysis(tmp_path, crop=False)
    assert start_s == 0.0 and end_s == pytest.approx(served.size / 16_000)


def test_silence_is_left_whole_and_cropping_is_optional() -> None:
    silence = np.zeros(16_000, dtype=np.float32)
    assert crop_to_speech(silence, 16_000) is silence
    signal, rate_hz = soundfile.read(ravdess_clip(RAVDESS_CLIP), dtype="float32")
    (kept,) = served_waveforms([signal], rate_hz, crop_margin_s=None)
    (cropped,) = served_waveforms([signal], rate_hz, crop_margin_s=SPEECH_PAD_S)
    assert kept is signal and 0.3 * signal.size < cropped.size < 0.8 * signal.size


def test_a_wider_margin_keeps_that_much_more_silence_within_the_clip() -> None:
    signal, rate_hz = soundfile.read(ravdess_clip(RAVDESS_CLIP), dtype="float32")
    tight = crop_to_speech(signal, rate_hz, margin_s=0.1)
    wide = crop_to_speech(signal, rate_hz, margin_s=0.5)
    assert wide.size == pytest.approx(tight.size + 2 * 0.4 * rate_hz, abs=2)
    assert crop_to_speech(signal, rate_hz, margin_s=5.0).size == signal.size


def test_silence_margin_is_the_mean_silence_on_both_sides_of_the_speech() -> None:
    signal, rate_hz = soundfile.read(ravdess_clip(RAVDESS_CLIP), dtype="float32")
    # the clip's own leading silence (0.57 s of it), half a second more before, a quarter after
    around = np.concatenate([signal[: rate_hz // 2], signal, signal[: rate_hz // 4]])
    own_s = silence_margin_s([signal], rate_hz)
    added_s = (0.5 + 0.25) / 2
    assert 0.5 < own_s < 1.0
    assert silence_margin_s([around], rate_hz) == pytest.approx(own_s + added_s, abs=0.03)
    both_s = silence_margin_s([around, signal], rate_hz)
    assert both_s == pytest.approx(own_s + added_s / 2, abs=0.03)
    assert silence_margin_s([np.zeros(rate_hz, dtype=np.float32)], rate_hz) == 0.0
    extent = speech_span(signal, rate_hz, margin_s=0.0)
    assert extent is not None
    sides_s = sorted([extent.start_s, signal.size / rate_hz - extent.end_s])
    assert silence_margin_s([signal], rate_hz, quantile=0.0) == pytest.approx(sides_s[0])
    assert silence_margin_s([signal], rate_hz, quantile=1.0) == pytest.approx(sides_s[1])


def _ravdess_set(names: tuple[str, ...]) -> ClipSet:
    utterances, waveforms = [], []
    for name in names:
        signal, _ = soundfile.read(ravdess_clip(name), dtype="float32")
        utterances.append(Utterance(ravdess_clip(name), "ravdess", "01", "angry"))
        waveforms.append(signal)
    targets = np.zeros((len(names), 9))
    return ClipSet(utterances, waveforms, targets, targets, np.zeros((len(names), 3)))


def test_evaluation_crops_what_the_model_sees_after_the_padding_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = _ravdess_set((RAVDESS_CLIP,))
    seen: dict[bool, list[int]] = {}

    def recording_predict(path: Path, waveforms: list[np.ndarray]) -> dict[str, np.ndarray]:
        seen.setdefault(path.name == "crop.onnx", []).extend(w.size for w in waveforms)
        return {"logits": np.zeros((len(waveforms), 9), dtype=np.float32)}

    monkeypatch.setattr(evaluate_module, "predict_onnx", recording_predict)
    run = RunData(RunSpec("fold0", (), (), ("01",)), clips, clips, clips)
    for crop in (False, True):
        name = "crop.onnx" if crop else "whole.onnx"
        margin_s = SPEECH_PAD_S if crop else None
        run_predictions(
            run, {"fp32": tmp_path / name}, clips, False, tmp_path / f"{crop}.npz", margin_s
        )
    whole_size = clips.waveforms[0].size
    validation, clean, padded = seen[False]
    assert validation == clean == whole_size and padded == whole_size + 2 * 16_000
    validation, clean, padded = seen[True]
    assert clean < 0.8 * whole_size, "leading and trailing silence dropped"
    assert abs(padded - clean) < 0.5 * 16_000, "the two added seconds are dropped as well"


def test_padding_adds_a_quiet_second_on_both_sides_and_is_seeded() -> None:
    clips = _ravdess_set((RAVDESS_CLIP,))
    (padded,) = padded_waveforms(clips)
    again = padded_waveforms(clips)[0]
    pad = round(PAD_S * 16_000)
    original = clips.waveforms[0]
    assert padded.size == original.size + 2 * pad and np.array_equal(padded, again)
    floor = np.sqrt(np.mean(padded[:pad] ** 2))
    assert 0 < floor < 0.02 * np.sqrt(np.mean(original**2)) * np.sqrt(original.size / pad)
    np.testing.assert_allclose(padded[pad:-pad], original, atol=0.01)


def test_crop_share_sees_ravdess_silence_and_babble_taken_for_speech() -> None:
    (shares,) = crop_shares(["ravdess"], step=60).values()
    assert 0.4 < shares["clean"] < 0.75, "RAVDESS clips are about half silence"
    assert shares["babble_10dB"] > shares["clean"] + 0.15, "babble reads as speech"
    assert "| ravdess |" in markdown({"ravdess": shares})
