"""``python -m toolkit compare-recipes``: recipes' five-fold figures side by side, over seeds.

Each recipe is given as the evaluated run directories of its training seeds (``toolkit
evaluate``; the noise rows need it run with noise, ``toolkit seeds`` alone leaves them out).
Every figure is read from the directories' ``results.json`` (one model variant, int8 by
default): per recipe the value of each run directory and their mean; with two recipes, the
difference of the means (second minus first) and Welch's t, so that a difference is read
against the seed-to-seed spread rather than one run's luck.

UA and accuracy are fractions in ``results.json`` and shown in percent (their differences in
percentage points); "points below clean" rows are the UA at that condition minus the clean UA of
the same corpus, in points; ECE and CCC are shown as they are stored.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scipy import stats

from toolkit.ablation import RESULTS_FILE
from toolkit.augment.noise import NOISE_KINDS
from toolkit.card import recipe_comparison_table, record_result

CORPUS_NAMES: Mapping[str, str] = {"ravdess": "RAVDESS", "emodb": "EmoDB"}
NOISE_SNR_DB = 10
"""The SNR of the robustness target (no more than 10 points below clean)."""


Unit = Literal["%", "points", ""]
Kind = Literal["accuracy", "noise", "silence", "other"]


@dataclass(frozen=True)
class Figure:
    """One row: ``read`` takes a results.json variant block and gives the value (``None`` when
    the block lacks it). ``unit``: ``%`` for fractions shown in percent, ``points`` for values
    that already are differences in percentage points, ``""`` for plain numbers. ``kind``,
    ``corpus`` and ``condition`` say what a row measures (``noise``: a 10 dB condition,
    ``silence``: the padded one), so that readers such as the card's limitation lines need not
    parse ``name``."""

    name: str
    read: Callable[[Mapping[str, Any]], float | None]
    unit: Unit = "%"
    kind: Kind = "accuracy"
    corpus: str | None = None
    condition: str | None = None


def _dig(block: Mapping[str, Any], *keys: str) -> float | None:
    node: Any = block
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node)


def _below_clean(
    condition: Callable[[Mapping[str, Any]], float | None], corpus: str
) -> Callable[[Mapping[str, Any]], float | None]:
    def read(block: Mapping[str, Any]) -> float | None:
        value = condition(block)
        clean = _dig(block, "in_corpus", corpus, "all_labels", "ua")
        return None if value is None or clean is None else 100 * (value - clean)

    return read


def _reader(*keys: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda block: _dig(block, *keys)


def figures() -> list[Figure]:
    """The compared rows, in table order."""
    rows: list[Figure] = []
    for corpus, name in CORPUS_NAMES.items():
        rows.append(
            Figure(f"{name} UA, all classes", _reader("in_corpus", corpus, "all_labels", "ua"))
        )
    for corpus, name in CORPUS_NAMES.items():
        rows.append(
            Figure(
                f"{name} UA, 6 shared classes", _reader("in_corpus", corpus, "shared_labels", "ua")
            )
        )
    for direction in ("emodb_to_ravdess", "ravdess_to_emodb"):
        label = (
            direction.replace("_to_", " -> ")
            .replace("emodb", "EmoDB")
            .replace("ravdess", "RAVDESS")
        )
        rows.append(Figure(f"cross-corpus {label} UA", _reader("cross_corpus", direction, "ua")))
        rows.append(
            Figure(
                f"cross-corpus {label} UA, + 1 s silence each side",
                _reader("cross_corpus", direction, "ua_padded"),
            )
        )
    for corpus, name in CORPUS_NAMES.items():
        for noise in NOISE_KINDS:
            condition = f"{NOISE_SNR_DB} dB {noise}"
            noisy = _reader("noise_ua", f"{noise}_{NOISE_SNR_DB}dB", corpus)
            rows.append(
                Figure(
                    f"{name} {condition}, points below clean",
                    _below_clean(noisy, corpus),
                    unit="points",
                    kind="noise",
                    corpus=name,
                    condition=condition,
                )
            )
        rows.append(
            Figure(
                f"{name} + 1 s silence each side, points below clean",
                _below_clean(_reader("padded_ua", corpus), corpus),
                unit="points",
                kind="silence",
                corpus=name,
                condition="1 s silence each side",
            )
        )
    calibration = _reader("calibration", "ece_after")
    rows.append(Figure("ECE after temperature", calibration, unit="", kind="other"))
    ccc = _reader("affect", "ccc_mean")
    rows.append(Figure("affect CCC (mean of V, A, D)", ccc, unit="", kind="other"))
    octant = _reader("affect", "octant_accuracy_from_head")
    rows.append(Figure("octant accuracy (head)", octant, kind="other"))
    return rows


def read_variant_block(run_dir: Path, variant: str) -> Mapping[str, Any]:
    """The ``variant`` block (``fp32``/``int8``) of an evaluated run directory's results."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise SystemExit(
            f"{path} is missing: evaluate {run_dir} first (python -m toolkit evaluate)"
        )
    block: Mapping[str, Any] = json.loads(path.read_text()).get(variant, {})
    return block


def welch_t(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Welch's t of ``second`` against ``first``; ``None`` with fewer than two values on a side
    or no spread at all."""
    if len(first) < 2 or len(second) < 2:
        return None
    if statistics.pvariance(first) == 0 and statistics.pvariance(second) == 0:
        return None
    with warnings.catch_warnings():  # near-identical runs: scipy warns, t is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        t = float(stats.ttest_ind(second, first, equal_var=False).statistic)
    return None if math.isnan(t) else t


def paired_differences(
    first: Sequence[float | None], second: Sequence[float | None]
) -> list[float]:
    """``second[i] - first[i]`` for every run both sides measured."""
    return [b - a for a, b in zip(first, second, strict=True) if a is not None and b is not None]


def paired_t(first: Sequence[float | None], second: Sequence[float | None]) -> float | None:
    """Paired t of ``second`` against ``first`` (run ``i`` of one against run ``i`` of the
    other; pairs with a missing side are left out); ``None`` with fewer than two pairs or
    differences that do not vary."""
    differences = paired_differences(first, second)
    if len(differences) < 2 or all(math.isclose(d, differences[0]) for d in differences):
        return None  # float noise in equal differences would give a meaningless huge t
    return float(stats.ttest_1samp(differences, 0.0).statistic)


def compare(
    recipes: Mapping[str, Sequence[Path]], variant: str = "int8", paired: bool = False
) -> dict[str, Any]:
    """Per figure and recipe, the value of every run directory and their mean (``None`` where
    no directory has it); with exactly two recipes also ``difference`` and ``welch_t``, or
    with ``paired`` (run ``i`` of both recipes holds the same trained weights, served or
    evaluated differently) ``paired_t`` instead, and ``difference`` is then the mean of the
    per-run differences over the runs both sides measured.

    Raises:
        SystemExit: ``paired`` without exactly two recipes of as many runs each.
    """
    if paired and (len(recipes) != 2 or len({len(d) for d in recipes.values()}) != 1):
        raise SystemExit("--paired needs exactly two recipes with as many run dirs each")
    blocks = {
        name: [read_variant_block(d, variant) for d in dirs] for name, dirs in recipes.items()
    }
    rows = []
    for figure in figures():
        values = {
            name: [figure.read(b) for b in recipe_blocks] for name, recipe_blocks in blocks.items()
        }
        if all(v is None for vs in values.values() for v in vs):
            continue
        row: dict[str, Any] = {
            "figure": figure.name,
            "unit": figure.unit,
            "kind": figure.kind,
            "corpus": figure.corpus,
            "condition": figure.condition,
            "recipes": {},
        }
        means: list[float | None] = []
        measured: list[list[float]] = []
        for name, recipe_values in values.items():
            present = [v for v in recipe_values if v is not None]
            mean = statistics.fmean(present) if present else None
            row["recipes"][name] = {"values": recipe_values, "mean": mean}
            means.append(mean)
            measured.append(present)
        if len(means) == 2 and means[0] is not None and means[1] is not None:
            if paired:  # runs measured on one side only enter neither difference nor t
                first, second = values.values()
                differences = paired_differences(first, second)
                row["difference"] = statistics.fmean(differences) if differences else None
                row["paired_t"] = paired_t(first, second)
            else:
                row["difference"] = means[1] - means[0]
                row["welch_t"] = welch_t(measured[0], measured[1])
        rows.append(row)
    return {
        "variant": variant,
        "paired": paired,
        "recipes": {name: [str(d) for d in dirs] for name, dirs in recipes.items()},
        "processors": {name: processors_of(dirs) for name, dirs in recipes.items()},
        "rows": rows,
    }


def markdown(document: Mapping[str, Any]) -> str:
    """The comparison as Markdown: the runs compared, then the table
    (:func:`toolkit.card.recipe_comparison_table`)."""
    lines = [
        f"Model variant: {document['variant']}. Runs: "
        + "; ".join(f"{n} = {', '.join(d)}" for n, d in document["recipes"].items()),
        "",
        *recipe_comparison_table(document),
    ]
    return "\n".join(lines) + "\n"


def processors_of(run_dirs: Sequence[Path]) -> list[str]:
    """The processors the runs were trained on (``<run_dir>/<run>/environment.json``)."""
    found = {
        str(json.loads(path.read_text()).get("processor", "unknown"))
        for run_dir in run_dirs
        for path in run_dir.glob("*/environment.json")
    }
    return sorted(found)


def record_in_model_dir(model_dir: Path, document: Mapping[str, Any]) -> Path:
    """Store ``document`` in the model's ``results.json`` and re-render its card. Returns the
    card. A comparison of recipes is ``recipe_comparison`` (a section with the table, and
    limitation lines on silence and noise); a paired one, the same runs served another way, is
    ``serving_comparison`` (its own section), so recording one keeps the other."""
    key = "serving_comparison" if document.get("paired") else "recipe_comparison"
    return record_result(model_dir, key, dict(document))
