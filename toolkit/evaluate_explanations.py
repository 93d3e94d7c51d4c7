"""Evaluate ``/explain`` on held-out speakers: faithfulness by deletion, and plausibility.

    python -m toolkit.evaluate_explanations --model models/<name>/<version> [--max-clips 120]

Held-out speakers: those the packaged run never trained on. ``results.json`` in the model
directory names the run (``shipped.run``) and ``folds.json`` its folds: run ``foldN`` held out
fold N's test speakers; the ``final`` run trained on everyone except fold 0's validation
speakers (used only for early stopping and calibration), so those are the held-out ones.
``--speakers corpus/id,...`` overrides this.

For every clip the service's own pipeline and explanation run (``analyse`` + ``explain``, with
the speaker's gender for the norms), then:

- **Faithfulness (deletion; Petsiuk et al. 2018).** The predicted label's probability after
  occluding the most salient tiles (saliency order) and after occluding the same number of
  random tiles (``--random-orders`` permutations, averaged), at several fractions of the
  tiles, relative to the unoccluded probability. A faithful saliency lowers it faster: the area
  under the salient curve is smaller than under the random one. Reported: both mean curves,
  both mean areas, and a one-sided Wilcoxon signed-rank test over clips.
- **Plausibility.** The consistency score (share of cues pointing the way the expert table
  expects for the predicted label) for correct versus wrong predictions: means, the
  Mann-Whitney U test and the AUROC of the score for telling correct from wrong.

Results are printed and written to ``<model dir>/explanations.json`` (or ``--out``).

``--latency CLIP`` instead times the pipeline, the explanation and the PNG figure on one clip
(median of ``--repeats``) and prints them as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy import stats

from service.config import Settings
from service.errors import InputError
from service.explain.explanation import explain
from service.explain.references import Gender
from service.explain.saliency import deletion_curve, saliency_order
from service.inference.session import OnnxModel
from service.pipeline import analyse
from toolkit.data import load_emodb, load_ravdess
from toolkit.data.types import Utterance
from toolkit.folds import load_folds

DELETION_FRACTIONS: Final[tuple[float, ...]] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Shares of the tiles occluded along the deletion curves (up to half: beyond that nearly
all speech is gone whatever the order)."""
RANDOM_ORDERS: Final[int] = 3
MAX_CLIPS: Final[int] = 120


@dataclass(frozen=True)
class ClipResult:
    """One held-out clip's figures."""

    path: str
    label: str
    predicted: str
    correct: bool
    consistency: float | None
    salient_curve: list[float]
    random_curve: list[float]
    regions: int
    explain_ms: float


def held_out_speakers(model_dir: Path) -> list[str]:
    """Speaker keys the packaged run never trained on (see the module docstring).

    Raises:
        ValueError: ``results.json`` or ``folds.json`` is missing or names an unknown run.
    """
    results_path, folds_path = model_dir / "results.json", model_dir / "folds.json"
    if not results_path.is_file() or not folds_path.is_file():
        raise ValueError(f"{model_dir} has no results.json/folds.json; pass --speakers")
    run = json.loads(results_path.read_text())["shipped"]["run"]
    folds = load_folds(folds_path)
    if run == "final":
        return list(folds[0].validation_speakers)
    if run.startswith("fold") and run[4:].isdigit() and int(run[4:]) < len(folds):
        return list(folds[int(run[4:])].test_speakers)
    raise ValueError(f"cannot tell the held-out speakers of run {run!r}; pass --speakers")


def pick_clips(
    utterances: Sequence[Utterance], speakers: Sequence[str], labels: Sequence[str], limit: int
) -> list[Utterance]:
    """Clips of ``speakers`` with a label the model knows, at most ``limit``, spread evenly."""
    keys = set(speakers)
    members = sorted(
        (u for u in utterances if u.speaker_key in keys and u.label in labels),
        key=lambda u: str(u.path),
    )
    if len(members) <= limit:
        return members
    return [members[int(i)] for i in np.linspace(0, len(members) - 1, limit)]


def evaluate_clip(
    utterance: Utterance, model: OnnxModel, settings: Settings, rng: np.random.Generator
) -> ClipResult | None:
    """All figures of one clip, or None when the service refuses it (counted as skipped)."""
    try:
        analysis = analyse(utterance.path.read_bytes(), model, settings)
    except InputError:
        return None
    start_s = time.perf_counter()
    gender: Gender | None = utterance.gender if utterance.gender in ("female", "male") else None  # type: ignore[assignment]
    explanation = explain(analysis, model, gender)
    explain_ms = (time.perf_counter() - start_s) * 1000.0
    saliency = explanation.saliency
    n_tiles = saliency.grid.n_tiles
    counts = sorted({round(f * n_tiles) for f in DELETION_FRACTIONS})
    salient = deletion_curve(saliency, analysis.segments, model, saliency_order(saliency), counts)
    randoms = [
        deletion_curve(saliency, analysis.segments, model, list(rng.permutation(n_tiles)), counts)
        for _ in range(RANDOM_ORDERS)
    ]
    base = max(float(salient[0]), 1e-12)
    fractions = np.array(counts) / n_tiles
    return ClipResult(
        path=str(utterance.path.name),
        label=utterance.label,
        predicted=explanation.label,
        correct=explanation.label == utterance.label,
        consistency=explanation.predicted.score,
        salient_curve=_resample(fractions, salient / base),
        random_curve=_resample(fractions, np.mean(randoms, axis=0) / base),
        regions=len(explanation.regions),
        explain_ms=explain_ms,
    )


def _resample(fractions: np.ndarray, curve: np.ndarray) -> list[float]:
    """The curve at ``DELETION_FRACTIONS`` (counts are rounded per clip; interpolate back)."""
    return [float(v) for v in np.interp(DELETION_FRACTIONS, fractions, curve)]


def summarise(results: Sequence[ClipResult], skipped: int) -> dict[str, Any]:
    """Mean curves, areas, tests and the plausibility comparison."""
    salient = np.array([r.salient_curve for r in results])
    random = np.array([r.random_curve for r in results])
    x = np.array(DELETION_FRACTIONS) / DELETION_FRACTIONS[-1]
    salient_area = np.trapezoid(salient, x, axis=1)
    random_area = np.trapezoid(random, x, axis=1)
    faithfulness = {
        "fractions_deleted": list(DELETION_FRACTIONS),
        "salient_curve_mean": salient.mean(axis=0).round(4).tolist(),
        "random_curve_mean": random.mean(axis=0).round(4).tolist(),
        "salient_area_mean": round(float(salient_area.mean()), 4),
        "random_area_mean": round(float(random_area.mean()), 4),
        "clips_salient_below_random": int(np.sum(salient_area < random_area)),
        "wilcoxon_p_salient_less": _wilcoxon_less(salient_area, random_area),
    }
    return {
        "clips": len(results),
        "skipped_by_the_service": skipped,
        "accuracy": round(float(np.mean([r.correct for r in results])), 4) if results else None,
        "clips_with_regions": int(sum(r.regions > 0 for r in results)),
        "explain_ms_median": round(float(np.median([r.explain_ms for r in results])), 1),
        "faithfulness": faithfulness,
        "plausibility": _plausibility(results),
    }


def _wilcoxon_less(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or np.allclose(a, b):
        return None
    return float(f"{stats.wilcoxon(a, b, alternative='less').pvalue:.3g}")


def _plausibility(results: Sequence[ClipResult]) -> dict[str, Any]:
    correct = np.array([r.consistency for r in results if r.correct and r.consistency is not None])
    wrong = np.array(
        [r.consistency for r in results if not r.correct and r.consistency is not None]
    )
    figures: dict[str, Any] = {
        "correct_n": int(correct.size),
        "wrong_n": int(wrong.size),
        "correct_consistency_mean": _mean(correct),
        "wrong_consistency_mean": _mean(wrong),
    }
    if correct.size and wrong.size:
        test = stats.mannwhitneyu(correct, wrong, alternative="two-sided")
        figures["mann_whitney_p"] = float(f"{test.pvalue:.3g}")
        figures["auroc_correct_vs_wrong"] = round(
            float(test.statistic) / (correct.size * wrong.size), 4
        )
    return figures


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 4) if values.size else None


def evaluate(
    model_dir: Path, speakers: Sequence[str] | None, max_clips: int, seed: int = 0
) -> dict[str, Any]:
    """Run the whole evaluation; returns the summary plus per-clip rows."""
    model = OnnxModel(model_dir)
    chosen = list(speakers) if speakers else held_out_speakers(model_dir)
    labels = model.manifest.heads.categorical.labels
    clips = pick_clips([*load_ravdess(), *load_emodb()], chosen, labels, max_clips)
    settings = Settings(models_dir=model_dir.parent.parent, log_json=False)
    rng = np.random.default_rng(seed)
    results: list[ClipResult] = []
    skipped = 0
    for index, utterance in enumerate(clips, start=1):
        result = evaluate_clip(utterance, model, settings, rng)
        if result is None:
            skipped += 1
        else:
            results.append(result)
        if index % 20 == 0:
            print(f"{index}/{len(clips)} clips", flush=True)
    summary = summarise(results, skipped)
    return {
        "model": f"{model.manifest.name}@{model.manifest.version}",
        "held_out_speakers": chosen,
        **summary,
        "per_clip": [r.__dict__ for r in results],
    }


def measure_latency(model_dir: Path, clip: Path, repeats: int) -> dict[str, float]:
    """Median milliseconds of /predict's pipeline, the explanation and the PNG figure on one
    clip, in this process (one thread per ONNX call, as the service runs)."""
    from service.explain.figure import render_figure

    model = OnnxModel(model_dir)
    settings = Settings(models_dir=model_dir.parent.parent, log_json=False)
    data = clip.read_bytes()
    timings: dict[str, list[float]] = {"predict": [], "explain": [], "png": []}
    for _ in range(repeats):
        start_s = time.perf_counter()
        analysis = analyse(data, model, settings)
        middle_s = time.perf_counter()
        explanation = explain(analysis, model)
        end_s = time.perf_counter()
        render_figure(explanation, analysis.signal, "png")
        timings["predict"].append((middle_s - start_s) * 1000.0)
        timings["explain"].append((end_s - middle_s) * 1000.0)
        timings["png"].append((time.perf_counter() - end_s) * 1000.0)
    medians = {f"{stage}_ms": round(float(np.median(v)), 1) for stage, v in timings.items()}
    return {
        "clip_s": round(analysis.decoded.duration_s, 2),
        "tiles": explanation.saliency.grid.n_tiles,
        "model_calls": explanation.saliency.model_calls,
        **medians,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m toolkit.evaluate_explanations")
    parser.add_argument("--model", type=Path, required=True, help="models/<name>/<version>")
    parser.add_argument(
        "--latency", type=Path, default=None, help="only time /explain on this clip, then exit"
    )
    parser.add_argument("--repeats", type=int, default=5, help="with --latency")
    parser.add_argument("--speakers", default="", help="corpus/id,... (default: held-out)")
    parser.add_argument("--max-clips", type=int, default=MAX_CLIPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default <model>/explanations.json")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.latency is not None:
        print(json.dumps(measure_latency(args.model, args.latency, args.repeats)))
        return
    speakers = [s for s in args.speakers.split(",") if s] or None
    report = evaluate(args.model, speakers, args.max_clips, args.seed)
    out = args.out or args.model / "explanations.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    summary = {k: v for k, v in report.items() if k != "per_clip"}
    print(json.dumps(summary, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
