"""The Markdown tables and number formats every generated region uses (one copy of each).

A shape is written as the package writes it everywhere (``archbuilder.render.style.shape_text``:
``3×224×224``); re-exported here so a region module imports its formats from one place.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from archbuilder.render.style import shape_text

__all__ = ["giga", "percent", "ratio", "row", "rule", "shape_text", "table"]


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = (), *, tight: bool = False
) -> str:
    """A Markdown table without padding, the columns whose index is in ``right`` right-aligned;
    no newline after the last row. The rule under the header is ``| --- | ---: |``, or with
    ``tight`` ``|---|---:|`` (each page keeps the one it was written with)."""
    return "\n".join([row(headers), rule(len(headers), right, tight=tight), *map(row, rows)])


def row(cells: Sequence[str]) -> str:
    """One line of a table: ``| a | b |``."""
    return "| " + " | ".join(cells) + " |"


def rule(columns: int, right: Collection[int] = (), *, tight: bool = False) -> str:
    """The line under a table's header."""
    marks = ["---:" if index in right else "---" for index in range(columns)]
    return "|" + "|".join(marks) + "|" if tight else row(marks)


def ratio(value: float) -> str:
    """``2.14×``."""
    return f"{value:.2f}×"


def percent(value: float) -> str:
    """A change as a signed whole percentage: 0.031 → ``+3%``."""
    return f"{value * 100:+.0f}%"


def giga(count: float, decimals: int = 2) -> str:
    """A count in billions: 1,584,000,000 → ``1.58``."""
    return f"{count / 1e9:.{decimals}f}"
