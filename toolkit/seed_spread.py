"""``python -m toolkit seeds``: how far a figure moves when only the training seed changes.

One run of each recipe (by default ``cross_emodb_to_ravdess``: train on EmoDB, test on RAVDESS)
is trained once per seed and evaluated without the noisy conditions. ``optim.seed`` seeds the
weight initialisation, the batch order and every augmentation draw; the folds (``folds.seed``)
and the test speakers stay fixed, so the spread is the run-to-run noise of the recipe itself.
A difference between two recipes smaller than that spread is no evidence for either.

Output: ``<out>/<recipe>_seed<N>/`` run directories (a finished one is not redone, so the
command resumes), ``<out>/seeds.json`` and ``<out>/seeds.md``: per recipe and test set, the UA
of every seed (fp32 and int8), their mean, sample standard deviation and range.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.ablation import RESULTS_FILE, Variant, percent, run_variant

VARIANTS = ("fp32", "int8")


@dataclass(frozen=True)
class SeedRow:
    """UA of one recipe on one test set, per seed and model variant (fractions)."""

    recipe: str
    test_set: str
    ua_by_variant: dict[str, dict[int, float]]


def seed_run_dir(out_root: Path, config: Path, seed: int) -> Path:
    """``<out>/<recipe stem>_seed<seed>``."""
    return out_root / f"{config.stem}_seed{seed}"


def uas_by_test_set(results: dict[str, Any], variant: str) -> dict[str, float]:
    """UA per test set in one ``results.json`` variant block: cross-corpus directions by name
    (``emodb_to_ravdess``), in-corpus results as ``<corpus>`` (all of its labels)."""
    block = results.get(variant, {})
    uas = {name: float(r["ua"]) for name, r in block.get("cross_corpus", {}).items()}
    for corpus, r in block.get("in_corpus", {}).items():
        uas[corpus] = float(r["all_labels"]["ua"])
    return uas


def collect_rows(out_root: Path, configs: Sequence[Path], seeds: Sequence[int]) -> list[SeedRow]:
    """One row per recipe and test set, from the seeds whose results exist."""
    rows = []
    for config in configs:
        table: dict[str, dict[str, dict[int, float]]] = {}
        for seed in seeds:
            path = seed_run_dir(out_root, config, seed) / RESULTS_FILE
            if not path.is_file():
                continue
            results = json.loads(path.read_text())
            for variant in VARIANTS:
                for test_set, ua in uas_by_test_set(results, variant).items():
                    table.setdefault(test_set, {}).setdefault(variant, {})[seed] = ua
        rows += [SeedRow(config.stem, name, by_variant) for name, by_variant in table.items()]
    return rows


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), minimum and maximum."""
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "mean": statistics.fmean(values),
        "sd": deviation,
        "min": min(values),
        "max": max(values),
    }


def seeds_markdown(rows: Sequence[SeedRow], seeds: Sequence[int]) -> list[str]:
    """The table: one line per recipe, test set and model variant."""
    lines = [
        "UA on the test speakers of the run (cross-corpus: the 6 shared classes); only the "
        "training seed (`optim.seed`) differs between columns; sd = sample standard deviation.",
        "",
        "| recipe | test set | model | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean | sd | range |",
        "|---|---|---|" + "---|" * len(seeds) + "---|---|---|",
    ]
    for row in rows:
        for variant, by_seed in row.ua_by_variant.items():
            summary = spread(list(by_seed.values()))
            cells = [percent(by_seed.get(s)) for s in seeds]
            lines.append(
                f"| {row.recipe} | {row.test_set} | {variant} | "
                + " | ".join(cells)
                + f" | {percent(summary['mean'])} | {100 * summary['sd']:.1f} points | "
                f"{percent(summary['min'])} - {percent(summary['max'])} |"
            )
    return lines


def seed_spread(
    configs: Sequence[Path],
    seeds: Sequence[int],
    out_root: Path,
    runs: Sequence[str] = ("cross_emodb_to_ravdess",),
    table_only: bool = False,
) -> Path:
    """Train and evaluate ``runs`` of every recipe once per seed, then write the tables.

    With ``table_only`` nothing is trained: the table lists the seeds that have results.
    Returns the path of ``seeds.md``.
    """
    if not table_only:
        for config in configs:
            for seed in seeds:
                variant = Variant(f"seed{seed}", "", config, (f"optim.seed={seed}",))
                run_variant(variant, runs, seed_run_dir(out_root, config, seed))
    rows = collect_rows(out_root, configs, seeds)
    out_root.mkdir(parents=True, exist_ok=True)
    document = {
        "configs": [str(c) for c in configs],
        "runs": list(runs),
        "seeds": list(seeds),
        "rows": [
            {
                "recipe": row.recipe,
                "test_set": row.test_set,
                "ua_by_variant": row.ua_by_variant,
                "spread": {v: spread(list(u.values())) for v, u in row.ua_by_variant.items()},
            }
            for row in rows
        ],
    }
    (out_root / "seeds.json").write_text(json.dumps(document, indent=1) + "\n")
    lines = ["# Seed spread", "", *seeds_markdown(rows, seeds)]
    path = out_root / "seeds.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
