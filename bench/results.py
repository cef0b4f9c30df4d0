"""What a benchmark section hands to the report: tables, targets, raw data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.timing import Spread

__all__ = ["Section", "Table", "Target", "fmt", "fmt_spread", "jsonify"]


@dataclass(slots=True)
class Table:
    """A printed table.

    Attributes:
        title: One line above the table.
        headers: Column names.
        rows: Cells, already formatted.
    """

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Target:
    """A performance target and whether this run met it.

    Attributes:
        name: What is measured.
        limit: The target, in words (e.g. ``"<= 300 ns"``).
        measured: The figure it is judged on, formatted.
        met: Whether it was met; ``None`` when not measured yet.
    """

    name: str
    limit: str
    measured: str
    met: bool | None


@dataclass(slots=True)
class Section:
    """One benchmark section's results.

    Attributes:
        key: Short id, also the key in the JSON output.
        title: Heading.
        tables: Tables to print.
        targets: Targets judged in this section.
        data: Raw figures for the JSON file and the plot.
        notes: Lines printed under the tables (method, caveats).
        todo: Set when the section cannot run yet, saying what it waits for.
    """

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    todo: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the section as a JSON-ready dict."""
        return {
            "title": self.title,
            "todo": self.todo,
            "notes": self.notes,
            "targets": [
                {"name": t.name, "limit": t.limit, "measured": t.measured, "met": t.met}
                for t in self.targets
            ],
            "data": self.data,
        }


def fmt(value: float, digits: int = 1) -> str:
    """Format a number with a fixed count of decimals."""
    return f"{value:.{digits}f}"


def fmt_spread(spread: Spread, digits: int = 1) -> str:
    """Format ``median [p25-p75]``."""
    return f"{spread.median:.{digits}f} [{spread.p25:.{digits}f}-{spread.p75:.{digits}f}]"


def jsonify(value: Any) -> Any:
    """Return ``value`` with every :class:`Spread` inside it turned into a dict."""
    if isinstance(value, Spread):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): jsonify(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonify(v) for v in value]
    return value
