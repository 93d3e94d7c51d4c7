"""``python -m toolkit seeds``: how far a figure moves when only the training seed changes.

One run of each recipe (by default ``cross_emodb_to_ravdess``: train on EmoDB, test on RAVDESS)
is trained once per seed and evaluated without the noisy conditions. ``optim.seed`` seeds the
weight initialisation, the batch order and every augmentation draw; the folds (``folds.seed``)
and the test speakers stay fixed, so the spread is the run-to-run noise of the recipe itself.
A difference between two recipes smaller than that spread is no evidence for either.

Output: ``<out>/<recipe>_seed<N>/`` run directories (a finished one is not redone, so the
command resumes), ``<out>/seeds.json`` and ``<out>/seeds.md``: per recipe and test set, the UA
of every seed (fp32 and int8), their mean, sample standard deviation and range. ``--record
models/<name>/<version>`` copies that spread into the model's ``results.json`` and card.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolkit.ablation import RESULTS_FILE, Variant, run_variant
from toolkit.card import record_result, seed_spread_lines

SEEDS_FILE = "seeds.json"

VARIANTS = ("fp32", "int8")


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


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), minimum and maximum."""
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "mean": statistics.fmean(values),
        "sd": deviation,
        "min": min(values),
        "max": max(values),
    }


def recipe_rows(out_root: Path, config: Path, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """One row per test set of ``config``'s seed runs that have results: ``ua_by_variant``
    maps variant -> seed (as text, as in JSON) -> UA; ``spread`` summarises each variant."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for seed in seeds:
        path = seed_run_dir(out_root, config, seed) / RESULTS_FILE
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        for variant in VARIANTS:
            for test_set, ua in uas_by_test_set(results, variant).items():
                table.setdefault(test_set, {}).setdefault(variant, {})[str(seed)] = ua
    return [
        {
            "recipe": config.stem,
            "test_set": test_set,
            "ua_by_variant": by_variant,
            "spread": {v: spread(list(u.values())) for v, u in by_variant.items()},
        }
        for test_set, by_variant in table.items()
    ]


def seed_spread(
    configs: Sequence[Path],
    seeds: Sequence[int],
    out_root: Path,
    runs: Sequence[str] = ("cross_emodb_to_ravdess",),
    table_only: bool = False,
    record_model_dir: Path | None = None,
) -> Path:
    """Train and evaluate ``runs`` of every recipe once per seed, then write the tables (and,
    with ``record_model_dir``, the spread into that model's results and card).

    With ``table_only`` nothing is trained: the table lists the seeds that have results.
    Returns the path of ``seeds.md``.
    """
    if not table_only:
        for config in configs:
            for seed in seeds:
                variant = Variant(f"seed{seed}", "", config, (f"optim.seed={seed}",))
                run_variant(variant, runs, seed_run_dir(out_root, config, seed))
    document = {
        "configs": [str(c) for c in configs],
        "runs": list(runs),
        "seeds": list(seeds),
        "rows": [row for config in configs for row in recipe_rows(out_root, config, seeds)],
    }
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / SEEDS_FILE).write_text(json.dumps(document, indent=1) + "\n")
    path = out_root / "seeds.md"
    path.write_text("\n".join(seed_spread_lines(document, "# Seed spread")), encoding="utf-8")
    if record_model_dir is not None:
        record_in_model_dir(record_model_dir, document)
    return path


def record_in_model_dir(model_dir: Path, document: dict[str, Any]) -> Path:
    """Store the spread ``document`` as ``seed_spread`` in the model's ``results.json`` and
    re-render its card. Returns the card's path."""
    return record_result(model_dir, "seed_spread", document)
