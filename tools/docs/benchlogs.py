"""Read the raw benchmark logs in bench/results/: the header bench/run_all.py writes, the
Markdown tables the scripts print, and single lines of their output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple


class Table(NamedTuple):
    caption: str  # the last line of text before the table
    headers: list[str]
    rows: list[list[str]]

    def row(self, *first: str) -> dict[str, str]:
        """The row whose first cells are ``first``, as {header: cell}."""
        for cells in self.rows:
            if tuple(cells[: len(first)]) == first:
                return dict(zip(self.headers, cells))
        raise KeyError(f"no row {first!r} in the table under {self.caption!r}")


class Log(NamedTuple):
    path: Path
    header: dict[str, str]  # command, date, commit, machine, software, took ... ({} for older logs)
    body: str
    tables: list[Table]

    @property
    def name(self) -> str:
        return f"bench/results/{self.path.name}"

    def table(self, caption: str) -> Table:
        """The table whose caption starts with ``caption``."""
        for table in self.tables:
            if table.caption.startswith(caption):
                return table
        raise KeyError(f"{self.name} has no table under {caption!r}")

    def search(self, pattern: str) -> re.Match:
        match = re.search(pattern, self.body, re.MULTILINE)
        if match is None:
            raise KeyError(f"{self.name} has no line matching {pattern!r}")
        return match


def read_log(path: Path) -> Log:
    text = path.read_text(encoding="utf-8")
    header: dict[str, str] = {}
    head, rule, body = text.partition("\n----\n")
    if rule and head.startswith("command: "):
        for line in head.splitlines():
            key, _, value = line.partition(": ")
            header[key] = value
    else:
        body = text
    body = body.split("\n---- stderr", 1)[0]
    return Log(path, header, body, _tables(body))


def _tables(body: str) -> list[Table]:
    tables: list[Table] = []
    caption, current = "", None
    for line in body.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if current is None:
                current = Table(caption, cells, [])
                tables.append(current)
            elif not set("".join(cells)) <= set("-:"):
                current.rows.append(cells)
            continue
        current = None
        if line.strip():
            caption = line.strip()
    return tables


def number(cell: str) -> float:
    """A table cell as a number: ``1,444``, ``2.14×``, ``+0.2%`` and ``11 ms`` all read."""
    return float(re.sub(r"[^0-9.eE+-]", "", cell.replace("×", "")).rstrip("+-") or "nan")


def source_line(log: Log) -> str:
    """Where a figure comes from: the log, the command, the date."""
    h = log.header
    if not h:
        return f"`{log.name}`"
    return f"`{log.name}` (`{h['command']}`, {h['date'][:10]}, {h['took']})"
