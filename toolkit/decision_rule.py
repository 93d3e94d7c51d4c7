"""``python -m toolkit check-rule``: a recipe experiment's pre-registered rule, applied.

An experiment on the default recipe is decided by a rule written down before its runs
(docs/training.md) and kept as a TOML file in ``docs/rules/``: the baseline and candidate
recipes, then conditions, each a list of figures of ``toolkit compare-recipes --json`` and the
smallest difference (candidate minus baseline, in percentage points) each must reach::

    baseline = "whisper_l2_noisy_servecrop_q90"
    candidate = "whisper_l2_noisy_servecrop_q90_babble20"

    [[conditions]]
    rule = "1"
    figures = ["EmoDB 10 dB babble, points below clean"]
    min_difference_points = 2.0

The verdict reads the comparison's differences (of the means over seeds when there are
several): UA rows are fractions there (``unit`` ``%``) and are turned into points; "points below
clean" rows already are points. The rule passes when every figure of every condition reaches
its minimum; nothing is rounded before the comparison.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.card import difference_in_points


@dataclass(frozen=True)
class Condition:
    """Every figure in ``figures`` must differ by at least ``min_difference_points``."""

    rule: str
    figures: tuple[str, ...]
    min_difference_points: float


@dataclass(frozen=True)
class DecisionRule:
    """A pre-registered rule: ``candidate`` against ``baseline`` under ``conditions``."""

    baseline: str
    candidate: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Check:
    """One figure of one condition: its measured difference (points) and whether it holds."""

    rule: str
    figure: str
    difference_points: float
    min_difference_points: float

    @property
    def holds(self) -> bool:
        return self.difference_points >= self.min_difference_points


def load_rule(path: Path) -> DecisionRule:
    """The rule in TOML file ``path`` (schema in the module docstring).

    Raises:
        ValueError: a key is missing, a condition's figures are not a list, or it names none.
    """
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        conditions = tuple(_condition(entry, path) for entry in document["conditions"])
        rule = DecisionRule(str(document["baseline"]), str(document["candidate"]), conditions)
    except KeyError as missing:
        raise ValueError(f"{path}: the rule lacks the key {missing}") from None
    if not conditions:
        raise ValueError(f"{path}: every rule needs conditions, each naming at least one figure")
    return rule


def _condition(entry: Mapping[str, Any], path: Path) -> Condition:
    figures = entry.get("figures")
    if not isinstance(figures, list) or not figures:
        raise ValueError(
            f"{path}: a condition's figures must be a list of figure names, at least one"
        )
    return Condition(
        str(entry["rule"]), tuple(map(str, figures)), float(entry["min_difference_points"])
    )


def row_difference_in_points(row: Mapping[str, Any]) -> float:
    """The row's difference (second recipe minus first) in percentage points."""
    if row["difference"] is None:
        raise ValueError(f"{row['figure']!r} has no difference: a recipe lacks the figure")
    return difference_in_points(float(row["difference"]), str(row["unit"]))


def check(rule: DecisionRule, comparison: Mapping[str, Any]) -> list[Check]:
    """Every figure of every condition of ``rule`` in ``comparison`` (compare-recipes JSON).

    Raises:
        ValueError: the comparison is not baseline then candidate, or lacks a figure (evaluate
            the runs with noise for the 10 dB rows).
    """
    order = list(comparison["recipes"])
    if order != [rule.baseline, rule.candidate]:
        raise ValueError(
            f"the comparison holds {order}; the rule needs [{rule.baseline!r}, "
            f"{rule.candidate!r}] in that order (differences are the second minus the first)"
        )
    rows = {row["figure"]: row for row in comparison["rows"]}
    checks: list[Check] = []
    for condition in rule.conditions:
        for figure in condition.figures:
            if figure not in rows:
                raise ValueError(f"the comparison has no figure {figure!r}")
            difference = row_difference_in_points(rows[figure])
            minimum = condition.min_difference_points
            checks.append(Check(condition.rule, figure, difference, minimum))
    return checks


def passes(checks: Sequence[Check]) -> bool:
    """Whether every check holds."""
    return all(item.holds for item in checks)


def markdown(checks: Sequence[Check]) -> str:
    """The checks as a table, then the verdict line."""
    lines = [
        "| rule | figure | difference (points) | at least | holds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {item.rule} | {item.figure} | {item.difference_points:+.2f} | "
        f"{item.min_difference_points:+.1f} | {'yes' if item.holds else '**no**'} |"
        for item in checks
    ]
    verdict = "passes" if passes(checks) else "fails"
    failed = sorted({item.rule for item in checks if not item.holds})
    suffix = f" (rules {', '.join(failed)})" if failed else ""
    return "\n".join(lines) + f"\n\nverdict: {verdict}{suffix}\n"
