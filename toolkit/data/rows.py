"""Reading metadata CSVs row by row, with errors that name the file, line and column."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class DataRowError(ValueError):
    """A metadata or manifest row that cannot become an :class:`Utterance`.

    The message names the file, the line (the header is line 1) and the column, and says
    what the value should be.
    """

    def __init__(self, path: Path, line: int, column: str, problem: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        super().__init__(f"{path}: line {line}, column {column!r}: {problem}")


@dataclass(frozen=True)
class Row:
    """One CSV data row with its line number, for error messages."""

    path: Path
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        """Stripped value of ``column`` ('' when the column is absent or empty)."""
        return (self.values.get(column) or "").strip()

    def require(self, column: str) -> str:
        """Stripped, non-empty value of ``column``; raises :class:`DataRowError` otherwise."""
        value = self.get(column)
        if not value:
            raise self.error(column, "value is missing")
        return value

    def error(self, column: str, problem: str) -> DataRowError:
        """Error about ``column`` of this row."""
        return DataRowError(self.path, self.line, column, problem)

    def float_in(self, column: str, low: float, high: float) -> float | None:
        """Value of ``column`` as a float in [low, high], ``None`` when empty."""
        text = self.get(column)
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise self.error(column, f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise self.error(column, f"{value} is outside [{low}, {high}]")
        return value


def read_rows(path: Path, required_columns: Sequence[str] = ()) -> Iterator[Row]:
    """Yield the data rows of the CSV file ``path``.

    Raises ``FileNotFoundError`` when the file is missing and ``ValueError`` when a
    required column is absent from the header.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or ()]
        missing = [column for column in required_columns if column not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; the header has {header}")
        reader.fieldnames = header
        for values in reader:
            yield Row(path=path, line=reader.line_num, values=values)
