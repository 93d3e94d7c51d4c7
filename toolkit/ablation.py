"""``python -m toolkit ablate``: train and evaluate the recipe variants of one spec file on the
same runs (same speakers, same seed, same epochs), and write one table.

The spec (``toolkit/configs/ablations.toml``) names a base config, the runs (``fold0``), the
overrides common to every variant and, per variant, an optional other config and its own
overrides. A variant whose runs are already trained (checkpoint and a full history) or
evaluated (``results.json``) is not redone, so an interrupted ablation resumes.

Output: ``<out>/<variant>/`` run directories, ``<out>/ablation.json`` and ``<out>/ablation.md``;
with ``--backbones dir,dir`` a second table compares fully evaluated run directories (all
folds), e.g. the compact and the frozen-Whisper recipe. ``--reference NAME`` reads the same
variants against another one of them (differences and paired intervals against ``NAME``), into
``ablation_vs_<NAME>.json`` and ``.md`` so that the spec's own table stays. ``--set
key=value`` adds overrides to the variants this invocation trains (for example
``optim.threads=2``); the run's ``config.json`` records them.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from service.labels import CANONICAL_LABELS
from toolkit.evaluate import PREDICTIONS_FILE, evaluate, label_indices
from toolkit.metrics.classification import unweighted_accuracy
from toolkit.train.config import TrainConfig, load_config
from toolkit.train.experiment import is_trained, load_utterances, read_plan, train_runs
from toolkit.train.loop import HISTORY_FILE

RESULTS_FILE = "results.json"
REFERENCE_VARIANT = "default"
CORPORA = ("ravdess", "emodb")
BOOTSTRAP_RESAMPLES = 2000
"""Paired bootstrap resamples of the test clips for the interval of a difference."""
BOOTSTRAP_SEED = 0


class UnknownVariantError(ValueError):
    """A variant name that the spec file does not define."""


@dataclass(frozen=True)
class TestOutcomes:
    """Test clips of one variant's runs: ``true``/``predicted`` canonical label indices
    (argmax restricted to the clip's corpus labels, as in ``toolkit evaluate``) and
    ``corpus`` names, all ``(N,)``, in the same clip order for every variant."""

    true: np.ndarray
    predicted: np.ndarray
    corpus: np.ndarray


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: ``config`` with ``overrides`` applied."""

    name: str
    change: str
    config: Path
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class AblationSpec:
    """The parsed spec file."""

    runs: tuple[str, ...]
    variants: tuple[Variant, ...]
    reference: str = REFERENCE_VARIANT


def read_spec(path: Path) -> AblationSpec:
    """Parse an ablation spec (see ``toolkit/configs/ablations.toml``)."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    common = list(document.get("common", []))
    variants = tuple(
        Variant(
            name=name,
            change=str(table["change"]),
            config=Path(table.get("config", document["base"])),
            overrides=tuple(common + list(table.get("set", []))),
        )
        for name, table in document["variants"].items()
    )
    return AblationSpec(
        runs=tuple(document["runs"]),
        variants=variants,
        reference=str(document.get("reference", REFERENCE_VARIANT)),
    )


def variant_config(variant: Variant) -> TrainConfig:
    """The training config of ``variant``."""
    return load_config(variant.config, list(variant.overrides))


def run_variant(variant: Variant, runs: Sequence[str], out_dir: Path) -> dict[str, Any]:
    """Train the missing runs of ``variant`` and evaluate them (no noise conditions)."""
    config = variant_config(variant)
    missing = [r for r in runs if not is_trained(out_dir / r, config.optim.epochs)]
    if missing:
        train_runs(config, out_dir, missing)
    results_path = out_dir / RESULTS_FILE
    if missing or not results_path.is_file():
        return evaluate(out_dir, list(runs), noise=False)
    results: dict[str, Any] = json.loads(results_path.read_text())
    return results


def best_validation_ua(run_dir: Path) -> float:
    """Highest validation score (mean validation UA over corpora) in the run's history."""
    history = json.loads((run_dir / HISTORY_FILE).read_text())
    return max(float(epoch["validation_score"]) for epoch in history)


def variant_row(variant: Variant, runs: Sequence[str], out_dir: Path) -> dict[str, Any]:
    """The figures of one variant: test UA per corpus (all labels), their mean, ECE."""
    results = json.loads((out_dir / RESULTS_FILE).read_text())["fp32"]
    ua = {c: float(results["in_corpus"][c]["all_labels"]["ua"]) for c in CORPORA}
    return {
        "variant": variant.name,
        "change": variant.change,
        "validation_ua": sum(best_validation_ua(out_dir / r) for r in runs) / len(runs),
        "test_ua": ua,
        "test_ua_mean": sum(ua.values()) / len(ua),
        "ece_after_temperature": float(results["calibration"]["ece_after"]),
    }


def backbone_description(model: dict[str, Any]) -> str:
    """``compact``, ``whisper_tiny, frozen`` or ``whisper_tiny, top k layers fine-tuned``
    (``whisper_tiny, bottom n of 4 layers, ...`` for a truncated encoder)."""
    backbone = str(model["backbone"])
    if backbone != "whisper_tiny":
        return backbone
    layers = int(model.get("whisper_trainable_layers", 0))
    kept = int(model.get("whisper_layers", 4))
    truncated = f"bottom {kept} of 4 layers, " if kept < 4 else ""
    tuned = f"top {layers} layer{'s' if layers > 1 else ''} fine-tuned" if layers else "frozen"
    return f"{backbone}, {truncated}{tuned}"


def backbone_row(run_dir: Path) -> dict[str, Any]:
    """Five-fold figures of a fully evaluated run directory (``toolkit evaluate``)."""
    results = json.loads((run_dir / RESULTS_FILE).read_text())
    block = results["fp32"]
    config = json.loads((run_dir / "config.json").read_text())
    noise = block.get("noise_ua", {})
    return {
        "run_dir": str(run_dir),
        "backbone": backbone_description(config["model"]),
        "runs": results["runs_evaluated"],
        "test_ua": {c: block["in_corpus"][c]["all_labels"]["ua"] for c in CORPORA},
        "test_ua_6shared": {c: block["in_corpus"][c]["shared_labels"]["ua"] for c in CORPORA},
        "cross_corpus_ua": {k: v["ua"] for k, v in block.get("cross_corpus", {}).items()},
        "ece_after_temperature": block["calibration"]["ece_after"],
        "ravdess_ua_babble_10dB": noise.get("babble_10dB", {}).get("ravdess"),
        "latency_ms_per_3s_clip": block["latency_ms_per_3s_clip_1_thread"]["median"],
        "model_file_mib": {
            variant: results[variant]["model_file_bytes"] / 2**20
            for variant in ("fp32", "int8")
            if "model_file_bytes" in results.get(variant, {})
        },
    }


def test_outcomes(out_dir: Path, runs: Sequence[str]) -> TestOutcomes:
    """Read the saved fp32 test logits of ``runs`` and the clips' labels."""
    config = json.loads((out_dir / "config.json").read_text())
    utterances = load_utterances(config["data"]["corpora"])
    labels_by_corpus = json.loads((out_dir / RESULTS_FILE).read_text())["labels_by_corpus"]
    plan = read_plan(out_dir)
    true, predicted, corpus = [], [], []
    for run in runs:
        speakers = set(plan[run].test_speakers)
        clips = [u for u in utterances if u.speaker_key in speakers]
        logits = np.load(out_dir / run / PREDICTIONS_FILE)["fp32/test/clean|logits"]
        for utterance, row in zip(clips, logits, strict=True):
            allowed = label_indices(labels_by_corpus[utterance.corpus])
            predicted.append(int(allowed[np.argmax(row[allowed])]))
            true.append(CANONICAL_LABELS.index(utterance.label))
            corpus.append(utterance.corpus)
    return TestOutcomes(np.array(true), np.array(predicted), np.array(corpus))


def mean_corpus_ua(outcomes: TestOutcomes, rows: np.ndarray) -> float:
    """Mean over corpora of the UA of the clips at ``rows`` (indices, repeats allowed)."""
    n_classes = len(CANONICAL_LABELS)
    uas = []
    for corpus in CORPORA:
        chosen = rows[outcomes.corpus[rows] == corpus]
        uas.append(
            unweighted_accuracy(outcomes.true[chosen], outcomes.predicted[chosen], n_classes)
        )
    return float(np.mean(uas))


def paired_bootstrap_interval(
    variant: TestOutcomes, reference: TestOutcomes, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95 % percentile interval of ``mean UA(variant) - mean UA(reference)`` over paired
    resamples of the same test clips, drawn within each corpus (Efron & Tibshirani 1993)."""
    if not np.array_equal(variant.true, reference.true):
        raise ValueError("variants were tested on different clips; no paired comparison")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    by_corpus = [np.flatnonzero(variant.corpus == c) for c in CORPORA]
    differences = []
    for _ in range(resamples):
        rows = np.concatenate([rng.choice(idx, size=idx.size) for idx in by_corpus])
        differences.append(mean_corpus_ua(variant, rows) - mean_corpus_ua(reference, rows))
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def add_intervals(
    rows: list[dict[str, Any]],
    out_root: Path,
    runs: Sequence[str],
    reference_name: str = REFERENCE_VARIANT,
) -> None:
    """Give every row ``delta_interval``: the paired bootstrap interval against the
    reference variant."""

    def saved(variant: str) -> bool:
        return all((out_root / variant / run / PREDICTIONS_FILE).is_file() for run in runs)

    if not saved(reference_name):
        return
    reference = test_outcomes(out_root / reference_name, runs)
    for row in rows:
        if row["variant"] != reference_name and saved(row["variant"]):
            outcomes = test_outcomes(out_root / row["variant"], runs)
            row["delta_interval"] = paired_bootstrap_interval(outcomes, reference)


def percent(value: float | None) -> str:
    """``0.5712`` -> ``57.1 %``; ``None`` -> ``-``."""
    return "-" if value is None else f"{100 * value:.1f} %"


def ablation_markdown(
    rows: Sequence[dict[str, Any]], runs: Sequence[str], reference_name: str = REFERENCE_VARIANT
) -> list[str]:
    """The variant table; deltas are test-UA-mean points against the reference variant."""
    reference = next((r for r in rows if r["variant"] == reference_name), None)
    lines = [
        f"Runs: {', '.join(runs)} (test speakers of those runs; UA over all labels of each "
        "corpus; validation UA = best epoch's mean over corpora; "
        f"'vs {reference_name}': points of mean UA, with the 95 % paired bootstrap interval "
        "over the same test clips: an interval that contains 0 is no evidence either way).",
        "",
        "| variant | change | validation UA | RAVDESS UA | EmoDB UA | mean "
        f"| vs {reference_name} | 95 % interval | ECE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        delta = (
            ""
            if reference is None
            else f"{100 * (row['test_ua_mean'] - reference['test_ua_mean']):+.1f}"
        )
        lines.append(
            f"| {row['variant']} | {row['change']} | {percent(row['validation_ua'])} | "
            f"{percent(row['test_ua']['ravdess'])} | {percent(row['test_ua']['emodb'])} | "
            f"{percent(row['test_ua_mean'])} | {delta} | {interval_text(row)} | "
            f"{percent(row['ece_after_temperature'])} |"
        )
    return lines


def interval_text(row: dict[str, Any]) -> str:
    """``[-4.1, +2.0]`` points, or empty without an interval."""
    if "delta_interval" not in row:
        return ""
    low, high = row["delta_interval"]
    return f"[{100 * low:+.1f}, {100 * high:+.1f}]"


def backbone_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The all-folds backbone comparison table."""
    lines = [
        "| run dir | backbone | RAVDESS UA (8) | EmoDB UA (7) | RAVDESS / EmoDB UA (6 shared) "
        "| cross R->E / E->R | ECE | RAVDESS babble 10 dB | ms per 3 s clip "
        "| file MiB (fp32 / int8) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cross = row["cross_corpus_ua"]
        r_to_e, e_to_r = cross.get("ravdess_to_emodb"), cross.get("emodb_to_ravdess")
        sizes = row["model_file_mib"]
        lines.append(
            f"| {row['run_dir']} | {row['backbone']} | {percent(row['test_ua']['ravdess'])} | "
            f"{percent(row['test_ua']['emodb'])} | {percent(row['test_ua_6shared']['ravdess'])} / "
            f"{percent(row['test_ua_6shared']['emodb'])} | "
            f"{percent(r_to_e)} / {percent(e_to_r)} | "
            f"{percent(row['ece_after_temperature'])} | {percent(row['ravdess_ua_babble_10dB'])} | "
            f"{row['latency_ms_per_3s_clip']:.1f} | "
            + " / ".join(f"{sizes[k]:.1f}" for k in ("fp32", "int8") if k in sizes)
            + " |"
        )
    return lines


def ablate(
    spec_path: Path,
    out_root: Path,
    names: Sequence[str] | None = None,
    backbone_dirs: Sequence[Path] = (),
    table_only: bool = False,
    extra_overrides: Sequence[str] = (),
    reference: str | None = None,
) -> Path:
    """Run the (chosen) variants of ``spec_path`` into ``out_root`` and write the tables.

    ``extra_overrides`` (``key=value``) are added to every variant this call trains. With
    ``table_only``, nothing is trained or evaluated: the table lists the variants that already
    have results. ``reference`` (a variant of the spec) replaces the spec's reference and
    writes ``ablation_vs_<reference>.*`` instead. Returns the path of the markdown table.
    Raises :class:`UnknownVariantError` when ``reference`` or one of ``names`` is not a
    variant of the spec (before anything is trained).
    """
    spec = read_spec(spec_path)
    known = [v.name for v in spec.variants]
    for role, name in [("reference", reference), *(("variant", n) for n in names or ())]:
        if name is not None and name not in known:
            message = f"{role} {name!r} is not a variant of {spec_path}: {', '.join(known)}"
            raise UnknownVariantError(message)
    stem = "ablation"
    if reference is not None and reference != spec.reference:
        spec = replace(spec, reference=reference)
        stem = f"ablation_vs_{reference}"
    for variant in spec.variants:
        if not table_only and (names is None or variant.name in names):
            overrides = (*variant.overrides, *extra_overrides)
            run_variant(replace(variant, overrides=overrides), spec.runs, out_root / variant.name)
    # rows are read after all training, so variants another process finished meanwhile count
    rows = [
        variant_row(variant, spec.runs, out_root / variant.name)
        for variant in spec.variants
        if (out_root / variant.name / RESULTS_FILE).is_file()
    ]
    add_intervals(rows, out_root, spec.runs, spec.reference)
    backbones = [backbone_row(d) for d in backbone_dirs]
    out_root.mkdir(parents=True, exist_ok=True)
    document = {
        "spec": str(spec_path),
        "runs": list(spec.runs),
        "reference": spec.reference,
        "variants": rows,
        "backbones": backbones,
    }
    (out_root / f"{stem}.json").write_text(json.dumps(document, indent=1) + "\n")
    lines = ["# Ablations", "", *ablation_markdown(rows, spec.runs, spec.reference)]
    if backbones:
        lines += ["", "## Backbones (all folds)", "", *backbone_markdown(backbones)]
    path = out_root / f"{stem}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
