"""Export the Whisper tiny.en encoder to ONNX and measure it; figures for the backbone doc.

Run (about a minute on one core)::

    OMP_NUM_THREADS=1 .venv/bin/python -m toolkit.backbones.measure_whisper --out-dir /tmp/wt

It exports the encoder (log-mel front end included, dynamic batch and length), quantises
it (int8 dynamic), and prints, for real RAVDESS clips: ONNX vs PyTorch differences, the
ONNX Runtime time per 3 s clip on one thread, file sizes, and (when ``ctranslate2`` is
installed) differences against CTranslate2's own encoder on 30 s padded features.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf
import torch

from toolkit.backbones.whisper_tiny import WhisperTinyEncoder, default_model_path

RAVDESS_AUDIO = Path("/work/shared/data/ravdess/audio")
REFERENCE_CLIPS = ("03-01-01-01-01-01-01", "03-01-05-02-02-01-02", "03-01-03-01-01-02-03")
SAMPLING_RATE_HZ = 16_000
WHISPER_WINDOW_SAMPLES = 30 * SAMPLING_RATE_HZ
MIN_EXPORT_SAMPLES = 640


@dataclass(frozen=True)
class Figures:
    """Everything the doc reports (units in the names)."""

    onnx_vs_torch_max_abs: float
    onnx_vs_torch_p999_abs: float
    int8_vs_torch_mean_cosine: float
    int8_vs_torch_p5_cosine: float
    int8_vs_torch_min_cosine: float
    ort_ms_per_3s_clip_float32: float
    ort_ms_per_3s_clip_int8: float
    onnx_float32_mb: float
    onnx_int8_mb: float
    ct2_max_abs: float | None
    ct2_min_cosine: float | None
    unpadded_vs_padded_mean_cosine: float


def load_clip(name: str) -> np.ndarray:
    """A RAVDESS clip as float32 ``(samples,)`` at 16 kHz."""
    signal, sampling_rate_hz = sf.read(RAVDESS_AUDIO / f"{name}.flac", dtype="float32")
    if sampling_rate_hz != SAMPLING_RATE_HZ:
        raise ValueError(f"{name}: {sampling_rate_hz} Hz, expected {SAMPLING_RATE_HZ}")
    return np.asarray(signal, dtype=np.float32)


def pad_batch(
    clips: list[np.ndarray], num_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad clips into float32 ``(B, S)`` and int64 ``lengths (B,)``."""
    lengths = np.array([len(clip) for clip in clips], dtype=np.int64)
    batch = np.zeros((len(clips), num_samples or int(lengths.max())), dtype=np.float32)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    return batch, lengths


def export_encoder_onnx(encoder: WhisperTinyEncoder, path: Path) -> Path:
    """Export ``encoder`` with the dynamo exporter: inputs ``waveform``, ``lengths``.

    Outputs are ``frames`` float32 ``(batch, frames, 384)`` and ``valid`` bool
    ``(batch, frames)``; batch and samples (640 .. 480 000) are dynamic.
    """
    waveform, lengths = pad_batch([load_clip(REFERENCE_CLIPS[0])] * 2)
    batch = torch.export.Dim("batch")
    samples = torch.export.Dim("samples", min=MIN_EXPORT_SAMPLES, max=WHISPER_WINDOW_SAMPLES)
    torch.onnx.export(
        encoder.eval(),
        (torch.from_numpy(waveform), torch.from_numpy(lengths)),
        str(path),
        dynamo=True,
        external_data=False,
        input_names=["waveform", "lengths"],
        output_names=["frames", "valid"],
        dynamic_shapes={"waveform": {0: batch, 1: samples}, "lengths": {0: batch}},
    )
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation (onnxruntime.quantization) of the encoder's linear layers.

    Only MatMuls with a constant weight are quantised (per output channel); the front end
    (DFT convolution, mel MatMul) and the two convolutions stay float32: quantising the
    DFT basis and the waveform to 8 bits destroys the log-mel of quiet bins (frame cosine
    to float32 fell to -0.02), and int8 convolutions were slower and less accurate.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    front_end = [
        node.name for node in graph.node if any(i.startswith("frontend.") for i in node.input)
    ]
    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=front_end,
        extra_options={"MatMulConstBOnly": True},
    )
    return target


def one_thread_session(path: Path) -> ort.InferenceSession:
    """An ONNX Runtime CPU session limited to one intra-op and one inter-op thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(
    session: ort.InferenceSession, waveform: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Encoder frames float32 ``(B, T, 384)`` from an exported encoder."""
    frames: np.ndarray = session.run(["frames"], {"waveform": waveform, "lengths": lengths})[0]
    return frames


def run_torch(encoder: WhisperTinyEncoder, waveform: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Encoder frames float32 ``(B, T, 384)`` from PyTorch."""
    with torch.no_grad():
        frames, _ = encoder(torch.from_numpy(waveform), torch.from_numpy(lengths))
    result: np.ndarray = frames.numpy()
    return result


def time_per_clip_ms(session: ort.InferenceSession, clip: np.ndarray, repeats: int = 20) -> float:
    """Median wall time in ms of one batch-1 run on ``clip`` (after 3 warm-up runs)."""
    waveform, lengths = pad_batch([clip])
    for _ in range(3):
        run_onnx(session, waveform, lengths)
    times_s = []
    for _ in range(repeats):
        start_s = time.perf_counter()
        run_onnx(session, waveform, lengths)
        times_s.append(time.perf_counter() - start_s)
    return 1000.0 * float(np.median(times_s))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching last-axis vectors; shape ``a.shape[:-1]``."""
    dot = (a * b).sum(-1)
    norms: np.ndarray = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.asarray(dot / np.maximum(norms, 1e-12))


def whisper_padded_features(encoder: WhisperTinyEncoder, clip: np.ndarray) -> np.ndarray:
    """Log-mel features of ``clip`` zero-padded to 30 s, as Whisper does: ``(1, 80, 3000)``."""
    waveform, _ = pad_batch([clip], WHISPER_WINDOW_SAMPLES)
    lengths = torch.tensor([WHISPER_WINDOW_SAMPLES])
    with torch.no_grad():
        features, _ = encoder.frontend(torch.from_numpy(waveform), lengths)
    return np.ascontiguousarray(features.numpy())


def encode_features(encoder: WhisperTinyEncoder, features: np.ndarray) -> np.ndarray:
    """PyTorch encoder output for full (unmasked) features ``(B, 80, F)``."""
    frame_lengths = torch.full((features.shape[0],), features.shape[2])
    with torch.no_grad():
        frames, _ = encoder.encode_features(torch.from_numpy(features), frame_lengths)
    return frames.numpy()


def ct2_encode(features: np.ndarray, model_dir: Path | None = None) -> np.ndarray | None:
    """CTranslate2's Whisper encoder output ``(B, 1500, 384)``, None without ctranslate2."""
    try:
        import ctranslate2  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    model = ctranslate2.models.Whisper(
        str(model_dir or default_model_path().parent), compute_type="float32", intra_threads=1
    )
    output = model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)
    return np.asarray(output, dtype=np.float32)


def measure(out_dir: Path) -> Figures:
    """Export, quantise and measure; files are written into ``out_dir``."""
    torch.set_num_threads(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = WhisperTinyEncoder.from_ct2()
    float_path = export_encoder_onnx(encoder, out_dir / "whisper_tiny_encoder.onnx")
    int8_path = quantize_int8(float_path, out_dir / "whisper_tiny_encoder.int8.onnx")
    clips = [load_clip(name) for name in REFERENCE_CLIPS]
    waveform, lengths = pad_batch(clips)
    reference = run_torch(encoder, waveform, lengths)
    float_session, int8_session = one_thread_session(float_path), one_thread_session(int8_path)
    diff = np.abs(run_onnx(float_session, waveform, lengths) - reference)
    int8_cos = _valid_cosines(run_onnx(int8_session, waveform, lengths), reference, lengths)
    ct2_abs, ct2_cos = _ct2_figures(encoder, clips)
    clip_3s = clips[1][: 3 * SAMPLING_RATE_HZ]
    return Figures(
        onnx_vs_torch_max_abs=float(diff.max()),
        onnx_vs_torch_p999_abs=float(np.quantile(diff, 0.999)),
        int8_vs_torch_mean_cosine=float(int8_cos.mean()),
        int8_vs_torch_p5_cosine=float(np.percentile(int8_cos, 5)),
        int8_vs_torch_min_cosine=float(int8_cos.min()),
        ort_ms_per_3s_clip_float32=time_per_clip_ms(float_session, clip_3s),
        ort_ms_per_3s_clip_int8=time_per_clip_ms(int8_session, clip_3s),
        onnx_float32_mb=_size_mb(float_path),
        onnx_int8_mb=_size_mb(int8_path),
        ct2_max_abs=ct2_abs,
        ct2_min_cosine=ct2_cos,
        unpadded_vs_padded_mean_cosine=_padding_effect(encoder, clips),
    )


def _valid_cosines(frames: np.ndarray, reference: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cosine of every valid frame of ``frames`` to ``reference``, concatenated ``(N,)``."""
    valid_frames = (lengths // 160 + 1) // 2
    return np.concatenate(
        [
            cosine_rows(frames[row, :count], reference[row, :count])
            for row, count in enumerate(valid_frames)
        ]
    )


def _ct2_figures(
    encoder: WhisperTinyEncoder, clips: list[np.ndarray]
) -> tuple[float | None, float | None]:
    features = np.concatenate([whisper_padded_features(encoder, clip) for clip in clips])
    reference = ct2_encode(features)
    if reference is None:
        return None, None
    ours = encode_features(encoder, features)
    return float(np.abs(ours - reference).max()), float(cosine_rows(ours, reference).min())


def _padding_effect(encoder: WhisperTinyEncoder, clips: list[np.ndarray]) -> float:
    """Mean cosine between frames of a clip encoded alone and inside Whisper's 30 s window."""
    cosines = []
    for clip in clips:
        alone = run_torch(encoder, *pad_batch([clip]))[0]
        padded = encode_features(encoder, whisper_padded_features(encoder, clip))[0]
        cosines.append(cosine_rows(alone, padded[: len(alone)]).mean())
    return float(np.mean(cosines))


def _size_mb(path: Path) -> float:
    total = path.stat().st_size + sum(
        p.stat().st_size for p in path.parent.glob(f"{path.name}.data")
    )
    return total / 1e6


def main() -> None:
    """Command line: print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/whisper_tiny_onnx"))
    figures = measure(parser.parse_args().out_dir)
    print(json.dumps(asdict(figures), indent=2))


if __name__ == "__main__":
    main()
