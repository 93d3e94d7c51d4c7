"""``python -m toolkit compare-int8``: which int8 method keeps a run directory's accuracy.

For each chosen fold run: the fp32 graph ``toolkit evaluate`` measures (``model.onnx``,
made by evaluate's ``ensure_onnx`` if missing) and one int8 graph per method of
``toolkit.export.INT8_METHODS`` (the static one calibrated on the same training clips as
evaluate's), each predicting the run's test speakers clean and with white and babble noise
at 10 dB SNR (the conditions where the static int8 graph of the fine-tuned Whisper recipe
lost most). Reports UA per corpus pooled over the runs, file size and single-thread latency.
The figures choose ``[export] int8_method`` of a recipe (docs/training.md, "Quantising the
fine-tuned encoder"); ``toolkit evaluate`` then measures the chosen graph in full.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data.affect_norms import neutral_point
from toolkit.evaluate import (
    calibration_clips,
    classification_figures,
    corpus_of,
    ensure_onnx,
    latency_ms,
    noisy_waveforms,
)
from toolkit.export import INT8_METHODS, predict_onnx, quantise_int8
from toolkit.train.dataset import ClipSet
from toolkit.train.experiment import (
    corpus_labels,
    load_utterances,
    log,
    read_plan,
    read_recipe,
    recipe_clips,
    select,
)

CONDITIONS: tuple[tuple[str, float], ...] = (("white", 10.0), ("babble", 10.0))
"""Noisy test conditions compared besides clean: (noise kind, SNR in dB)."""


def graphs_of_run(run_dir: Path, train: ClipSet, recipe_method: str) -> dict[str, Path]:
    """``fp32`` and ``int8-<method>`` graphs of one run.

    The fp32 graph and the recipe's own int8 graph are ``toolkit evaluate``'s (made or
    refreshed by ``ensure_onnx``, which also keeps evaluate's cached predictions consistent);
    every other method is quantised next to them if missing or older than the fp32 graph
    (static calibrated on evaluate's clips of ``train``).
    """
    evaluated = ensure_onnx(run_dir, train, recipe_method)
    graphs = {"fp32": evaluated["fp32"]}
    for method in INT8_METHODS:
        if method == recipe_method:
            graphs[f"int8-{method}"] = evaluated["int8"]
            continue
        target = run_dir / f"model.int8-{method}.onnx"
        if not target.is_file() or target.stat().st_mtime < evaluated["fp32"].stat().st_mtime:
            quantise_int8(evaluated["fp32"], target, calibration_clips(train), method)
        graphs[f"int8-{method}"] = target
    return graphs


def compare_int8(run_dir: Path, runs: Sequence[str], out: Path) -> dict[str, Any]:
    """Compare fp32 and every int8 method on the test speakers of ``runs``; write ``out``.

    Returns ``{"runs", "graphs": {graph: {"file_mib", "latency_ms_per_3s_clip_1_thread",
    "ua": {condition: {corpus: UA}}}}}``; UA of the clips of each corpus, argmax restricted
    to that corpus's labels, test predictions pooled over ``runs``.
    """
    config = read_recipe(run_dir)
    plan = read_plan(run_dir)
    utterances = load_utterances(config.data.corpora)
    labels_by_corpus = corpus_labels(utterances)
    clips = recipe_clips(config, utterances, neutral_point())
    logits: dict[str, dict[str, list[np.ndarray]]] = {}  # graph -> condition -> per run
    truths, corpora = [], []
    graphs: dict[str, Path] = {}
    for name in runs:
        log(f"comparing int8 methods on {name}")
        spec = plan[name]
        test = select(clips, spec.test_speakers)
        train = select(clips, spec.train_speakers)
        graphs = graphs_of_run(run_dir / name, train, config.export.int8_method)
        inputs = {"clean": test.waveforms} | {
            f"{kind}_{snr:g}dB": noisy_waveforms(test, clips, kind, snr) for kind, snr in CONDITIONS
        }
        for graph, path in graphs.items():
            for condition, waveforms in inputs.items():
                predicted = predict_onnx(path, waveforms)["logits"]
                logits.setdefault(graph, {}).setdefault(condition, []).append(predicted)
        truths.append(test.labels)
        corpora.append(corpus_of(test))
    true, corpus = np.concatenate(truths), np.concatenate(corpora)

    def ua_by_corpus(parts: list[np.ndarray]) -> dict[str, float]:
        stacked = np.concatenate(parts)
        figures = {
            c: classification_figures(true[corpus == c], stacked[corpus == c], allowed)
            for c, allowed in labels_by_corpus.items()
        }
        return {c: float(f["ua"]) for c, f in figures.items() if f}  # corpora with test clips

    report: dict[str, Any] = {"runs": list(runs), "graphs": {}}
    for graph, path in graphs.items():
        report["graphs"][graph] = {
            "file_mib": path.stat().st_size / 2**20,
            "latency_ms_per_3s_clip_1_thread": latency_ms(path),
            "ua": {condition: ua_by_corpus(parts) for condition, parts in logits[graph].items()},
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """One row per graph: file size, latency and UA per condition and corpus (percent)."""
    graphs = report["graphs"]
    first = next(iter(graphs.values()))["ua"]
    columns = [(condition, c) for condition, by in first.items() for c in by]
    header = "| graph | MiB | ms / 3 s clip (min) | " + " | ".join(
        f"{c} {condition}" for condition, c in columns
    )
    lines = [header + " |", "|" + "---|" * (3 + len(columns))]
    for graph, row in graphs.items():
        cells = [f"{100 * row['ua'][condition][c]:.1f}" for condition, c in columns]
        latency = row["latency_ms_per_3s_clip_1_thread"]["min"]
        lines.append(
            f"| {graph} | {row['file_mib']:.1f} | {latency:.1f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
