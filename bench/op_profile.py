"""``python -m bench.op_profile``: where a model spends its time, operator by operator.

ONNX Runtime's own profiler (``SessionOptions.enable_profiling``) records every kernel call;
this runs one 3 s clip of real speech (bench.clips) through a model ``--calls`` times on one
thread, with the service's session options, and sums the kernel time per operator type. The
figures chose the int8 method of the truncated Whisper model (docs/training.md, "Truncating the
encoder"): run it on two graphs of the same network to see what a change of operators buys.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.clips import make_clips
from bench.run import REPOSITORY_ROOT, default_data_dir
from service.inference.batching import pad_batch
from service.inference.registry import shipped_default
from service.inference.session import SessionTuning, session_options

CLIP_S = 3.0
WARMUP_CALLS = 3
US_PER_MS = 1000.0


@dataclass(frozen=True)
class OperatorTime:
    """Kernel time of one operator type, per call of the whole graph."""

    operator: str
    ms_per_call: float
    share: float
    """Fraction of the summed kernel time of all operators (0-1)."""


def kernel_ms_by_operator(
    trace: list[dict[str, object]], calls: int, skip_calls: int = 0
) -> list[OperatorTime]:
    """Per operator type, the kernel time per call (ms) and its share, largest first.

    ``trace`` is ONNX Runtime's profile (Chrome trace events, ``ts`` and ``dur`` in
    microseconds): kernel events have category ``Node``, a name ending in ``_kernel_time`` and
    ``args.op_name``; each call of the graph is a ``Session`` event ``model_run``. Kernels of
    the first ``skip_calls`` calls (warm-up) are left out; ``calls`` is how many follow.
    """
    runs = sorted(
        (_number(e, "ts"), _number(e, "dur")) for e in trace if e.get("name") == "model_run"
    )
    counted_from_us = runs[skip_calls - 1][0] + runs[skip_calls - 1][1] if skip_calls else 0
    totals_us: Counter[str] = Counter()
    for event in trace:
        args = event.get("args")
        if (
            event.get("cat") == "Node"
            and str(event.get("name", "")).endswith("_kernel_time")
            and isinstance(args, dict)
            and "op_name" in args
            and _number(event, "ts") >= counted_from_us
        ):
            totals_us[str(args["op_name"])] += _number(event, "dur")
    whole_us = sum(totals_us.values()) or 1
    return [
        OperatorTime(operator, total / calls / US_PER_MS, total / whole_us)
        for operator, total in totals_us.most_common()
    ]


def _number(event: dict[str, object], key: str) -> int:
    return int(str(event.get(key, 0)))


def profile(
    model_path: Path, waveform: np.ndarray, lengths: np.ndarray, calls: int
) -> list[OperatorTime]:
    """Run ``model_path`` on ``waveform`` ``(batch, samples)`` with ``lengths`` ``(batch,)``:
    ``WARMUP_CALLS`` calls, then ``calls`` profiled ones; :func:`kernel_ms_by_operator`."""
    with tempfile.TemporaryDirectory() as work:
        options = session_options(1, SessionTuning())
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(work) / "profile")
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        feeds = _feeds(session, waveform, lengths)
        for _ in range(WARMUP_CALLS + calls):
            session.run(None, feeds)
        trace = _trace(session.end_profiling())
    return kernel_ms_by_operator(trace, calls, skip_calls=WARMUP_CALLS)


def _feeds(
    session: ort.InferenceSession, waveform: np.ndarray, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    names = [node.name for node in session.get_inputs()]
    feeds = {names[0]: waveform}
    if len(names) > 1:
        feeds[names[1]] = lengths
    return feeds


def _trace(path: str) -> list[dict[str, object]]:
    events = json.loads(Path(path).read_text())
    return events if isinstance(events, list) else []


def default_model_path() -> Path:
    """The ONNX file of the newest version of the shipped default model."""
    models_dir = REPOSITORY_ROOT / "models"
    name = shipped_default(models_dir)
    if name is None:
        raise SystemExit(f"{models_dir} names no default model; pass a model file")
    return sorted((models_dir / name).iterdir())[-1] / "model.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.op_profile", description=__doc__)
    parser.add_argument("models", type=Path, nargs="*", help="ONNX files (default: the default)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--top", type=int, default=8, help="operators printed per model")
    arguments = parser.parse_args()
    clip = make_clips(arguments.data_dir, {CLIP_S: 1})[CLIP_S][0]
    waveform, lengths = pad_batch([clip.signal])
    for model_path in arguments.models or [default_model_path()]:
        rows = profile(model_path, waveform, lengths, arguments.calls)
        total_ms = sum(row.ms_per_call for row in rows)
        print(f"{model_path}: {total_ms:.2f} ms of kernels per 3 s clip (1 thread)")
        for row in rows[: arguments.top]:
            print(f"  {row.operator:<28} {row.ms_per_call:7.2f} ms  {row.share:6.1%}")


if __name__ == "__main__":
    main()
