"""MODEL_CARD.md, rendered only from ``results.json`` and the manifest (never typed by hand).

``render_card`` is a pure function of its inputs, so a test can re-render the card from the
shipped ``results.json`` and ``manifest.json`` and compare it with the shipped file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from service.inference.manifest import Manifest, Windowing, read_manifest
from toolkit.augment.noise import NOISE_KINDS

CARD_FILE = "MODEL_CARD.md"
RECIPE_COMPARISON_TITLE = "Recipe comparison over training seeds"
SILENCE_LOSS_POINTS = 1.0
"""Smallest mean loss of UA (points) to added silence that the limitations name."""

TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("ravdess_ua_8class", "RAVDESS 8-class UA", 0.60, ">="),
    ("ravdess_ua_6shared", "RAVDESS 6 shared classes UA", 0.65, ">="),
    ("emodb_ua_7class", "EmoDB 7-class UA", 0.70, ">="),
    (
        "cross_ravdess_to_emodb_ua_6shared",
        "Cross-corpus RAVDESS -> EmoDB UA (6 shared)",
        0.40,
        ">=",
    ),
    (
        "cross_emodb_to_ravdess_ua_6shared",
        "Cross-corpus EmoDB -> RAVDESS UA (6 shared)",
        0.40,
        ">=",
    ),
    ("ece_after_temperature", "ECE after temperature scaling", 0.05, "<="),
)
"""Targets of the task brief: (metric key, description, threshold, direction)."""
NOISE_TARGET_POINTS = 0.10
"""10 dB SNR must stay within 10 UA points of clean (task brief)."""


def pct(value: float | None) -> str:
    """0.6123 -> '61.2 %'; None -> 'n/a'."""
    return "n/a" if value is None else f"{100 * value:.1f} %"


def num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def headline_figures(results: dict[str, Any], variant: str) -> dict[str, float]:
    """The headline figures of ``variant`` (all speaker-independent), unrounded: the card's
    targets table reads them, the manifest stores them rounded (``package.headline_metrics``)."""
    block = results[variant]
    metrics: dict[str, float] = {}
    for corpus, figures in block.get("in_corpus", {}).items():
        n = len(figures["all_labels"]["labels"])
        metrics[f"{corpus}_ua_{n}class"] = figures["all_labels"]["ua"]
        metrics[f"{corpus}_wa_{n}class"] = figures["all_labels"]["wa"]
        metrics[f"{corpus}_macro_f1_{n}class"] = figures["all_labels"]["macro_f1"]
        metrics[f"{corpus}_ua_6shared"] = figures["shared_labels"]["ua"]
        noise = block.get("noise_ua", {})
        for condition in ("white_10dB", "pink_10dB", "babble_10dB"):
            if condition in noise and corpus in noise[condition]:
                metrics[f"{corpus}_ua_{n}class_{condition}"] = noise[condition][corpus]
    for direction, figures in block.get("cross_corpus", {}).items():
        metrics[f"cross_{direction}_ua_6shared"] = figures["ua"]
    if "calibration" in block:
        metrics["ece_before_temperature"] = block["calibration"]["ece_before"]
        metrics["ece_after_temperature"] = block["calibration"]["ece_after"]
    if "affect" in block:
        metrics["affect_ccc_mean"] = block["affect"]["ccc_mean"]
        metrics["octant_accuracy"] = block["affect"]["octant_accuracy_from_vad"]
    latency = block["latency_ms_per_3s_clip_1_thread"]
    metrics["latency_ms_per_3s_clip_1_thread_median"] = latency["median"]
    metrics["latency_ms_per_3s_clip_1_thread_min"] = latency["min"]
    return {k: float(v) for k, v in metrics.items()}


def target_rows(metrics: dict[str, float], block: dict[str, Any]) -> list[list[str]]:
    """One row per target: measured value, target, met or missed."""
    rows = []
    for key, description, threshold, direction in TARGETS:
        value = metrics.get(key)
        if value is None:
            rows.append(
                [description, "not measured", f"{direction} {pct(threshold)}", "not measured"]
            )
            continue
        met = value >= threshold if direction == ">=" else value <= threshold
        rows.append(
            [
                description,
                pct(value),
                f"{direction} {pct(threshold)}",
                "met" if met else "**missed**",
            ]
        )
    noise = block.get("noise_ua", {})
    for corpus in sorted(noise.get("clean", {})):
        for kind in NOISE_KINDS:
            condition = f"{kind}_10dB"
            if corpus in noise.get(condition, {}):
                drop = noise["clean"][corpus] - noise[condition][corpus]
                met = drop <= NOISE_TARGET_POINTS
                rows.append(
                    [
                        f"{corpus} UA drop at 10 dB {kind} noise",
                        f"{100 * drop:.1f} points",
                        "<= 10.0 points",
                        "met" if met else "**missed**",
                    ]
                )
    for corpus, figures in block.get("ldl", {}).items():
        better = _ldl_better(figures)
        rows.append(
            [
                f"{corpus} LDL metrics better than the training prior",
                f"{better} of 6",
                "6 of 6",
                "met" if better == 6 else "**missed**",
            ]
        )
    return rows


LOWER_IS_BETTER = ("chebyshev", "clark", "canberra", "kl")


def _ldl_better(figures: dict[str, dict[str, float]]) -> int:
    model, prior = figures["model"], figures["prior_baseline"]
    return sum(
        (model[k] < prior[k]) if k in LOWER_IS_BETTER else (model[k] > prior[k]) for k in model
    )


def classification_section(corpus: str, figures: dict[str, Any]) -> list[str]:
    lines = [f"### {corpus}", ""]
    rows = []
    for name in ("all_labels", "shared_labels"):
        f = figures[name]
        rows.append(
            [
                f"{len(f['labels'])} classes ({name.replace('_', ' ')})",
                str(f["n_clips"]),
                pct(f["ua"]),
                pct(f["wa"]),
                pct(f["macro_f1"]),
            ]
        )
    lines += table(["label set", "clips", "UA", "WA", "macro-F1"], rows)
    per_fold = ", ".join(pct(v) for v in figures["per_fold_ua"])
    lines += ["", f"UA per fold (all labels): {per_fold}.", ""]
    f = figures["all_labels"]
    lines += ["Recall per class and confusion (rows true, columns predicted):", ""]
    header = ["true \\ predicted", *f["labels"], "recall"]
    rows = [
        [label, *map(str, counts), pct(recall)]
        for label, counts, recall in zip(f["labels"], f["confusion"], f["recall"], strict=True)
    ]
    return lines + table(header, rows) + [""]


def fairness_section(in_corpus: dict[str, Any]) -> list[str]:
    lines = ["## Fairness (per gender)", ""]
    rows = []
    for corpus, figures in in_corpus.items():
        fair = figures["fairness"]
        if not fair:
            continue
        for gender, g in fair["per_gender"].items():
            rows.append(
                [corpus, gender, str(g["n_clips"]), pct(g["ua"]), pct(g["macro_f1"]), "", ""]
            )
        rows.append(
            [
                corpus,
                "gap",
                "",
                "",
                "",
                f"{num(fair['tpr_gap_max'])} / {num(fair['tpr_gap_mean'])}",
                f"{num(fair['demographic_parity_gap_max'])} / "
                f"{num(fair['demographic_parity_gap_mean'])}",
            ]
        )
    lines += table(
        [
            "corpus",
            "gender",
            "clips",
            "UA",
            "macro-F1",
            "TPR gap max / mean",
            "demographic-parity gap max / mean",
        ],
        rows,
    )
    note = (
        "TPR gap: per class, |recall(female) - recall(male)| (equal opportunity, Hardt et al. "
        "2016); demographic parity: per class, |P(pred = c | female) - P(pred = c | male)|."
    )
    return [*lines, "", note, ""]


def cross_corpus_section(cross: dict[str, dict[str, Any]]) -> list[str]:
    """Cross-corpus table; with a column for the padded condition when it was measured."""
    padded = all("ua_padded" in f for f in cross.values())
    header = ["train -> test", "clips", "UA", "WA", "macro-F1"]
    rows = [
        [
            direction.replace("_to_", " -> "),
            str(f["n_clips"]),
            pct(f["ua"]),
            pct(f["wa"]),
            pct(f["macro_f1"]),
            *([pct(f["ua_padded"])] if padded else []),
        ]
        for direction, f in cross.items()
    ]
    if padded:
        header.append("UA, 1 s of silence added on both sides")
    return ["## Cross-corpus (6 shared labels)", "", *table(header, rows), ""]


def padding_section(block: dict[str, Any], windowing: Windowing) -> list[str]:
    """In-corpus UA with and without a second of quiet silence around every test clip."""
    clean = block["in_corpus"]
    corpora = sorted(block["padded_ua"])
    rows = [
        ["as recorded", *[pct(clean[c]["all_labels"]["ua"]) for c in corpora]],
        ["1 s of silence added on both sides", *[pct(block["padded_ua"][c]) for c in corpora]],
    ]
    served = (
        "The service cuts a short recording to its speech for this model, keeping "
        f"{windowing.crop_margin_s:.2f} s of silence on each side (manifest "
        "`windowing.crop_to_speech`, `windowing.crop_margin_s`), as the figures above were "
        "measured."
        if windowing.crop_to_speech
        else "This model analyses a short recording whole, silence included."
    )
    return [
        "## Silence around the speech (UA, all labels of each corpus)",
        "",
        *table(["test clips", *corpora], rows),
        "",
        "The added silence is a pink noise floor 40 dB below the clip "
        f"(toolkit/evaluate.py, `padded_waveforms`). {served}",
        "",
    ]


def noise_section(noise: dict[str, dict[str, float]]) -> list[str]:
    corpora = sorted(noise.get("clean", {}))
    rows = [
        [condition, *[pct(values.get(c)) for c in corpora]] for condition, values in noise.items()
    ]
    return [
        "## Noise robustness (UA, all labels of each corpus)",
        "",
        *table(["condition", *corpora], rows),
        "",
        "White and pink noise are synthetic; babble sums 4 clips of other speakers of the "
        "same corpus. SNR over the whole clip (toolkit/augment/noise.py).",
        "",
    ]


def ldl_section(ldl_figures: dict[str, Any]) -> list[str]:
    metrics = ["chebyshev", "clark", "canberra", "kl", "cosine", "intersection"]
    rows = []
    for corpus, figures in ldl_figures.items():
        for source in ("model", "model_all_labels", "prior_baseline"):
            if source not in figures:
                continue
            rows.append(
                [corpus, source.replace("_", " "), *[num(figures[source][m]) for m in metrics]]
            )
    return [
        "## Label distributions (distribution head)",
        "",
        *table(
            [
                "corpus",
                "predictor",
                "Chebyshev (lower)",
                "Clark (lower)",
                "Canberra (lower)",
                "KL (lower)",
                "cosine (higher)",
                "intersection (higher)",
            ],
            rows,
        ),
        "",
        "Targets: EmoDB soft labels from its listener test (recognition share on the acted "
        "label, the rest spread over the other labels); RAVDESS has no rater votes (one-hot). "
        "Prior baseline: the mean training soft label of the same corpus (EM2LDL practice). "
        "'model': the predicted distribution restricted to the corpus's labels and "
        "renormalised (as the argmax is restricted); 'model all labels': the 9-way output "
        "(Clark and Canberra charge a full unit for every label the target gives 0 and the "
        "prediction does not).",
        "",
    ]


def alternative_calibration_lines(cal: dict[str, Any]) -> list[str]:
    """The calibration that was measured but not shipped (toolkit/evaluate.py), if any:
    the validation-speaker fit beside an out-of-fold one; cards of older results name the
    cross-fitted temperature they reported instead."""
    if "alternative" in cal:
        opening = (
            "Measured, not shipped: each fold's temperature fitted on its own validation "
            "speakers (temperatures "
        )
        temperatures, ece, nll = (
            cal["alternative"][k] for k in ("temperatures", "ece_after", "nll_after")
        )
    elif "ece_after_cross_fitted" in cal:
        opening = (
            "Reported, not shipped: each fold's temperature fitted instead on the other folds' "
            "test predictions (cross-fitted; temperatures "
        )
        temperatures = cal["cross_fitted_temperatures"]
        ece, nll = cal["ece_after_cross_fitted"], cal["nll_after_cross_fitted"]
    else:
        return []
    listed = ", ".join(num(t, 2) for t in temperatures)
    return ["", f"{opening}{listed}) gives ECE {num(ece)} and NLL {num(nll)} nats."]


def shipped_calibration_source(results: dict[str, Any], run_name: str) -> str:
    """Where the shipped run's temperatures and abstain threshold were fitted."""
    fitted_on = results["calibration_per_run"][run_name].get("fitted_on", "validation speakers")
    if fitted_on == "validation speakers":
        return "on its validation speakers"
    return f"out of fold, on the {fitted_on} (each scored by a model that never trained on it)"


def render_card(manifest: Manifest, results: dict[str, Any]) -> str:
    """The whole card as Markdown, from the manifest and the model directory's results.json.

    ``results["shipped"]`` names the run whose weights ship, the variant (``fp32`` or
    ``int8``) whose figures the card shows, and the training recipe.
    """
    shipped = results["shipped"]
    variant, run_name, recipe = shipped["variant"], shipped["run"], shipped["recipe"]
    block = results[variant]
    latency = block["latency_ms_per_3s_clip_1_thread"]
    metrics = headline_figures(results, variant)  # unrounded: one rounding, as the tables
    lines = [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        f"- File: `{manifest.file}`, sha256 `{manifest.sha256}`, "
        f"{block['model_file_bytes'] / 2**20:.2f} MiB ({variant}).",
        f"- {manifest.description}",
        f"- Licence: {manifest.licence}.",
        f"- Latency: {latency['median']:.2f} ms median, {latency['min']:.2f} ms minimum per 3 s "
        "clip, batch 1, one thread, ONNX Runtime CPU (`python -m toolkit evaluate` on the "
        "shared 2-core development machine, other jobs running).",
        "",
        "## Intended use",
        "",
        "Research and non-commercial prototyping of speech emotion recognition from short "
        "(0.5-6 s windows) clips of acted-style English or German speech: categorical emotion "
        "over the 9 canonical labels, a mixed-emotion distribution, valence/arousal/dominance "
        "and an EmoSphere octant, with calibrated confidence and abstention. Not for decisions "
        "about people (hiring, health, policing, credit), not for covert monitoring, and not "
        "for commercial use (RAVDESS licence).",
        "",
        "## Training data",
        "",
        "- RAVDESS speech, actors 01-20 (1,200 clips, 8 labels incl. calm and surprised; two "
        "English sentences only; Livingstone & Russo 2018; CC BY-NC-SA 4.0).",
        "- EmoDB, 8 of 10 speakers (408 clips, 7 labels incl. bored; German; Burkhardt et al. "
        "2005; CC0-1.0). This copy is altered: every clip is cut to 2.0 s. No figure here is an "
        "EmoDB benchmark result.",
        "- Both corpora are acted, studio-quality, by young adult actors: expect lower accuracy "
        "on spontaneous speech, other languages, children, older speakers and telephone audio.",
        f"- Shipped weights: run `{run_name}`; its temperatures and abstain threshold were fitted "
        f"{shipped_calibration_source(results, run_name)}.",
        "",
        "## Evaluation protocol",
        "",
        results["protocol"] + ".",
        "",
        "Runs evaluated: " + ", ".join(f"`{name}`" for name in results["runs_evaluated"]) + ".",
        "",
        "## Targets",
        "",
        *table(["figure", "measured", "target", "status"], target_rows(metrics, block)),
        "",
    ]
    if "in_corpus" in block:
        lines += ["## In-corpus results (speaker-independent)", ""]
        for corpus, figures in block["in_corpus"].items():
            lines += classification_section(corpus, figures)
    if block.get("cross_corpus"):
        lines += cross_corpus_section(block["cross_corpus"])
    if "noise_ua" in block:
        lines += noise_section(block["noise_ua"])
    if "padded_ua" in block:
        lines += padding_section(block, manifest.windowing)
    if "in_corpus" in block:
        lines += fairness_section(block["in_corpus"])
    if "calibration" in block:
        cal = block["calibration"]
        lines += [
            "## Calibration",
            "",
            f"ECE ({cal['bins']} bins, 9-way softmax): {num(cal['ece_before'])} before, "
            f"{num(cal['ece_after'])} after temperature scaling; NLL {num(cal['nll_before'])} "
            f"-> {num(cal['nll_after'])} nats. Per-fold temperatures: "
            + ", ".join(num(t, 2) for t in cal["temperatures"])
            + f". Shipped temperature: {num(manifest.heads.categorical.temperature, 3)}.",
            *alternative_calibration_lines(cal),
            "",
        ]
    if "uncertainty" in block:
        unc = block["uncertainty"]
        lines += [
            "## Uncertainty and abstention",
            "",
            f"Measure: normalised entropy of the calibrated 9-way softmax. Rule: {unc['rule']}. "
            f"Shipped threshold: {num(manifest.uncertainty.abstain_threshold)}. On test "
            f"speakers: abstains on {pct(unc['abstention_rate'])} of clips; accuracy "
            f"{pct(unc['accuracy_all'])} on all clips, {pct(unc['accuracy_kept'])} on kept "
            f"clips, {pct(unc['accuracy_abstained'])} on abstained clips.",
            "",
        ]
    if "ldl" in block:
        lines += ldl_section(block["ldl"])
    if "affect" in block:
        aff = block["affect"]
        ccc = ", ".join(f"{k} {num(v)}" for k, v in aff["ccc"].items())
        lines += [
            "## Affect (valence, arousal, dominance) and octants",
            "",
            f"CCC: {ccc} (mean {num(aff['ccc_mean'])}). Octant accuracy: "
            f"{pct(aff['octant_accuracy_from_vad'])} from the affect head, "
            f"{pct(aff['octant_accuracy_from_head'])} from the octant head "
            f"({aff['n_clips_with_octant']} clips whose target is not the neutral point). "
            f"Targets are {aff['targets']}: they measure emotion-category knowledge "
            "mapped to affect, not rated affect. Neutral point: "
            f"{manifest.neutral_point.model_dump()}.",
            "",
        ]
    limitation_source = limitation_comparison(results)
    lines += [
        "## Limitations",
        "",
        "- Small training set (28 speakers, two RAVDESS sentences); figures vary by several "
        "points between folds (see per-fold UA).",
        "- RAVDESS and EmoDB differ in language, label set and recording; the model sees the "
        "corpus implicitly and predicts all 9 labels: for audio outside these corpora, labels "
        "that no corpus shares (calm, surprised, bored) come from one corpus only.",
        "- Affect and octant outputs are trained on label-derived targets (no rated affect).",
        "- Gender is the only demographic attribute available; age, accent and language "
        "effects are unmeasured.",
        *reproduction_lines(results.get("reproduction")),
        *silence_limitation_lines(*limitation_source),
        *noise_limit_lines(*limitation_source),
        "",
        *seed_spread_lines(results.get("seed_spread")),
        *recipe_comparison_lines(results.get("recipe_comparison")),
        *serving_comparison_lines(results.get("serving_comparison")),
        "## Recipe",
        "",
        "```json",
        _json(recipe),
        "```",
        "",
        *environment_lines(shipped.get("environment")),
    ]
    return "\n".join(lines)


def environment_lines(environment: dict[str, Any] | None) -> list[str]:
    """The card section on what the shipped run was trained with (toolkit.numerics)."""
    if environment is None:
        return []
    return [
        "## Training environment",
        "",
        "Retraining gives this graph byte for byte only with the same versions, thread count "
        "and CPU kernels (`python -m toolkit environment` prints yours; docs/training.md, "
        '"Reproducing the shipped model").',
        "",
        "```json",
        _json(environment),
        "```",
        "",
    ]


def reproduction_lines(report: dict[str, Any] | None) -> list[str]:
    """The limitation line of a recorded ``toolkit reproduce --record`` outcome (none if
    never checked)."""
    if report is None:
        return []
    if report["identical_file"]:
        return [
            "- Retraining the shipped run gave this graph byte for byte (`toolkit reproduce`"
            f"{_retrained_environment_text(report.get('environment_retrained'))}); other "
            "processors' kernels or other library versions train other bytes "
            '(docs/training.md, "Reproducing the shipped model").'
        ]
    if report.get("identical_graph"):
        return [
            "- Retraining the shipped run gave the same graph: the same bytes once the "
            "exporter's debug metadata, which names the directory it was exported from, is "
            f"left out (`toolkit reproduce`"
            f"{_retrained_environment_text(report.get('environment_retrained'))}; "
            'docs/training.md, "Reproducing the shipped model").'
        ]
    worst = max(report["max_abs_difference"].values())
    return [
        "- **Not reproduced bit for bit**: retraining the shipped run with the same recipe "
        f"gave another graph (largest head difference {worst:.3g}; `toolkit reproduce`, "
        'docs/training.md, "Reproducing the shipped model").'
    ]


def seed_spread_lines(
    document: dict[str, Any] | None, heading: str = "## Run-to-run spread (training seed)"
) -> list[str]:
    """The card section of a recorded ``toolkit seeds --record`` (none if never measured):
    UA of the same run trained with each seed, per recipe, test set and model variant."""
    if document is None:
        return []
    seeds = [str(s) for s in document["seeds"]]
    rows = []
    for row in document["rows"]:
        for variant, by_seed in row["ua_by_variant"].items():
            summary = row["spread"][variant]
            rows.append(
                [
                    row["recipe"],
                    row["test_set"],
                    variant,
                    *(pct(by_seed.get(s)) for s in seeds),
                    pct(summary["mean"]),
                    f"{100 * summary['sd']:.1f}",
                    f"{pct(summary['min'])} - {pct(summary['max'])}",
                ]
            )
    header = ["recipe", "test set", "model", *(f"seed {s}" for s in seeds), "mean", "sd (points)"]
    return [
        heading,
        "",
        f"Run(s) {', '.join(document['runs'])} of each recipe trained once per training seed "
        "(`optim.seed`: initialisation, batch order, augmentation draws), same speakers and "
        "folds, evaluated without noise (`python -m toolkit seeds`). UA on the run's test "
        "speakers (cross-corpus: the 6 shared classes); mean, sd (sample standard deviation) "
        "and range are over the seeds measured; n/a: that seed's run was not measured. "
        "A difference smaller than this spread is no evidence either way.",
        "",
        *table([*header, "range"], rows),
        "",
    ]


def _retrained_environment_text(environment: dict[str, Any] | None) -> str:
    """ ", retrained with torch X on <machine> with <capability> kernels" (empty if unknown)."""
    if not environment:
        return ""
    threads = environment["torch_threads"]
    return (
        f", retrained with torch {environment['torch']} on {environment['machine']} with "
        f"{environment['cpu_capability']} kernels, {threads} thread{'' if threads == 1 else 's'}"
    )


def _comparison_cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "points":
        return f"{value:+.1f}"
    return f"{100 * value:.1f} %" if unit == "%" else f"{value:.3f}"


def difference_in_points(difference: float, unit: str) -> float:
    """A compare-recipes difference in percentage points: ``%`` rows hold fractions, ``points``
    rows already hold points (plain ``""`` rows are returned as they are)."""
    return 100 * difference if unit == "%" else difference


def _difference_cell(difference: float | None, unit: str) -> str:
    if difference is None:
        return "-"
    if unit == "":
        return f"{difference:+.3f}"
    return f"{difference_in_points(difference, unit):+.1f}"


def recipe_comparison_table(document: Mapping[str, Any]) -> list[str]:
    """The rows of a ``toolkit compare-recipes`` document as a Markdown table: per recipe each
    run's value and the mean (bold); with two recipes the difference of the means (points for
    percentages) and Welch's t (paired t when the runs were paired)."""
    names = list(document["recipes"])
    two = len(names) == 2
    paired = bool(document.get("paired"))
    header = ["figure"] + [f"{n} (runs; mean)" for n in names]
    if two:
        header += [f"{names[1]} - {names[0]}", "paired t" if paired else "Welch's t"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in document["rows"]:
        unit = str(row["unit"])
        cells = [str(row["figure"])]
        for name in names:
            entry = row["recipes"][name]
            measured = [v for v in entry["values"] if v is not None]  # runs lacking the figure
            runs = " / ".join(_comparison_cell(v, unit) for v in measured)
            cells.append(f"{runs}; **{_comparison_cell(entry['mean'], unit)}**")
        if two:
            cells.append(_difference_cell(row.get("difference"), unit))
            t = row.get("paired_t" if paired else "welch_t")
            cells.append("-" if t is None else f"{t:+.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def recipe_comparison_lines(document: dict[str, Any] | None) -> list[str]:
    """The card section of a recorded ``toolkit compare-recipes --record`` (none if never
    recorded): which runs were compared, on what processors, and the table."""
    if document is None:
        return []
    described = "; ".join(
        f"{name}: {', '.join(dirs)} ({', '.join(document.get('processors', {}).get(name, []))})"
        for name, dirs in document["recipes"].items()
    )
    return [
        f"## {RECIPE_COMPARISON_TITLE}",
        "",
        "Five-fold runs of this model's recipe and an alternative, each retrained once per "
        f"training seed, {document['variant']} graphs (`python -m toolkit compare-recipes "
        f"--record`; run directories and processors: {described}). They are not the shipped "
        "runs: they show how far this recipe's figures move from run to run and what the "
        "alternative trades. Each cell lists every run, then the mean in bold; points below "
        "clean are the UA at that condition minus the clean UA of the same corpus; + 1 s "
        "silence each side adds a second of quiet silence before and after every test clip; "
        + (
            "the paired t compares run i of one recipe with run i of the other, which share "
            "their trained weights (with two or three pairs, a rough guide only)."
            if document.get("paired")
            else "Welch's t compares the two recipes' runs (with two or three runs a side, a "
            "rough guide only)."
        ),
        "",
        *recipe_comparison_table(document),
        "",
    ]


def serving_comparison_lines(document: dict[str, Any] | None) -> list[str]:
    """The card section of a recorded paired comparison (``toolkit compare-recipes --paired
    --record``): this recipe's retrained runs, each evaluated as this model is served and as
    the alternative serves the same weights; none if never recorded."""
    if document is None:
        return []
    own, alternative = list(document["recipes"])
    runs = ", ".join(document["recipes"][own])
    processors = ", ".join(document.get("processors", {}).get(own, []))
    return [
        f"## {serving_comparison_title(document)}",
        "",
        f"Runs of this model's recipe, retrained once per training seed ({runs}; {processors}), "
        f"each evaluated as this model is served ({own}) and as {alternative} serves the same "
        f"trained weights (its recipe file, `toolkit/configs/{alternative}.toml`, says how), "
        f"{document['variant']} graphs (`python -m toolkit compare-recipes "
        "--paired --record`). Each cell lists the runs that measure the figure, then the mean "
        "in bold; the paired t compares each run with itself served the other way (a rough "
        "guide with few runs). Points below clean are the UA at that condition minus the clean "
        "UA of the same corpus; + 1 s silence each side adds a second of quiet silence before "
        "and after every test clip.",
        "",
        *recipe_comparison_table(document),
        "",
    ]


def limitation_comparison(results: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The recorded comparison the limitation lines read, and its card section's title: the
    recipe comparison, else the serving comparison (both list this model's runs first)."""
    if results.get("recipe_comparison") is not None:
        return results["recipe_comparison"], RECIPE_COMPARISON_TITLE
    serving = results.get("serving_comparison")
    if serving is None:
        return None, RECIPE_COMPARISON_TITLE
    return serving, serving_comparison_title(serving)


def serving_comparison_title(document: dict[str, Any]) -> str:
    """``Served differently: <alternative>``, the alternative being the comparison's second."""
    return f"Served differently: {list(document['recipes'])[1]}"


def silence_limitation_lines(document: dict[str, Any] | None, section: str) -> list[str]:
    """A limitation line when the recorded comparison (card section ``section``) shows this
    recipe (its first recipe) losing UA to silence around the clip; none otherwise."""
    if document is None:
        return []
    recipe = next(iter(document["recipes"]))
    losses = [
        (row["corpus"], -row["recipes"][recipe]["mean"])
        for row in document["rows"]
        if row.get("kind") == "silence"
        and row["recipes"][recipe]["mean"] is not None
        and -row["recipes"][recipe]["mean"] >= SILENCE_LOSS_POINTS
    ]
    if not losses:
        return []
    parts = [f"{loss:.1f} points ({corpus})" for corpus, loss in losses]
    measured = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return [
        "- Silence around the utterance costs accuracy: with a second of quiet silence added "
        f"before and after each test clip, retrained runs of this recipe lose {measured} of UA "
        f'on average ("{section}"). Trim long leading and trailing silence before upload.'
    ]


NOISE_LIMIT_POINTS = 10.0
"""The noise-robustness target: at 10 dB SNR no more than 10 points of UA below clean."""


def noise_limit_lines(document: dict[str, Any] | None, section: str) -> list[str]:
    """A limitation line naming the noise conditions where a retrained run of this recipe (the
    comparison's first; card section ``section``) fell more than the target's 10 points below
    clean; none otherwise."""
    if document is None:
        return []
    recipe = next(iter(document["recipes"]))
    missed = []
    for row in document["rows"]:
        if row.get("kind") != "noise":
            continue
        values = [v for v in row["recipes"][recipe]["values"] if v is not None]
        if any(v < -NOISE_LIMIT_POINTS for v in values):
            runs = " / ".join(f"{v:+.1f}" for v in values)
            mean = row["recipes"][recipe]["mean"]
            missed.append(f"{row['corpus']} {row['condition']} ({runs}; mean {mean:+.1f})")
    if not missed:
        return []
    return [
        f"- Retrained runs of this recipe fall more than {NOISE_LIMIT_POINTS:.0f} points below "
        f'clean at: {"; ".join(missed)} ("{section}"): whether one run of this recipe meets '
        "that target depends on its training seed."
    ]


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)


def write_card(out_dir: Path, manifest: Manifest, results: dict[str, Any]) -> Path:
    """Render and write ``out_dir/MODEL_CARD.md``."""
    path = out_dir / CARD_FILE
    path.write_text(render_card(manifest, results), encoding="utf-8")
    return path


def record_result(model_dir: Path, key: str, value: Any) -> Path:
    """Store ``value`` under ``key`` in the model's ``results.json`` and re-render its card
    (what ``toolkit reproduce --record`` and ``toolkit seeds --record`` do). Returns the card."""
    results_path = model_dir / "results.json"
    results = json.loads(results_path.read_text())
    results[key] = value
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    return write_card(model_dir, read_manifest(model_dir), results)
