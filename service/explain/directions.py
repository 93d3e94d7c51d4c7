"""The expert table of expected cue directions per emotion (data: ``cue_directions.csv``).

Each row states, for one canonical label and one cue, whether vocal-emotion research expects the
cue ``higher`` or ``lower`` than in neutral speech (or ``either`` where the sources disagree or
state no direction), the source's own name for the parameter, and the citation. A (label, cue)
pair without a row has no stated direction: it is reported as ``either`` with no source, never
filled in. Sources and the mapping from their parameters to our cues: ``docs/explain.md``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal

from service.explain.cues import CUE_UNITS
from service.labels import CANONICAL_LABELS

Direction = Literal["higher", "lower", "either"]
DIRECTIONS_PATH: Final[Path] = Path(__file__).with_name("cue_directions.csv")
_DIRECTIONS: Final[frozenset[str]] = frozenset({"higher", "lower", "either"})
NO_SOURCE: Final[str] = ""


@dataclass(frozen=True)
class Expectation:
    """Expected direction of one cue for one label, with its source (empty when none)."""

    direction: Direction
    source_parameter: str
    source: str
    note: str

    @property
    def is_directional(self) -> bool:
        """True for ``higher`` and ``lower``."""
        return self.direction != "either"


UNSTATED: Final[Expectation] = Expectation("either", "", NO_SOURCE, "no source states a direction")


@cache
def expert_table(path: Path = DIRECTIONS_PATH) -> dict[tuple[str, str], Expectation]:
    """``(label, cue) -> Expectation`` from the CSV at ``path`` (read once per path).

    Raises:
        ValueError: a row names an unknown label or cue, an unknown direction, has no source,
            or repeats a (label, cue) pair.
    """
    table: dict[tuple[str, str], Expectation] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for line, row in enumerate(csv.DictReader(stream), start=2):
            key, expectation = _parse_row(row, f"{path.name}:{line}")
            if key in table:
                raise ValueError(f"{path.name}:{line}: {key} appears twice")
            table[key] = expectation
    return table


def expected(label: str, cue: str) -> Expectation:
    """The expectation for ``cue`` under ``label`` (``UNSTATED`` when no source states one)."""
    return expert_table().get((label, cue), UNSTATED)


def _parse_row(row: dict[str, str], where: str) -> tuple[tuple[str, str], Expectation]:
    label, cue, direction = row["label"], row["cue"], row["direction"]
    if label not in CANONICAL_LABELS:
        raise ValueError(f"{where}: label {label!r} is not canonical")
    if cue not in CUE_UNITS:
        raise ValueError(f"{where}: cue {cue!r} is not one of {sorted(CUE_UNITS)}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"{where}: direction {direction!r} is not higher, lower or either")
    if not row["source"].strip():
        raise ValueError(f"{where}: every cell needs its source")
    expectation = Expectation(
        direction=direction,  # type: ignore[arg-type]  # checked against _DIRECTIONS above
        source_parameter=row["source_parameter"],
        source=row["source"],
        note=row.get("note") or "",
    )
    return (label, cue), expectation
