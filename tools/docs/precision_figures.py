"""The Precision section's tables, from bench/precision.py's logs (``tools.docs.performance``).

``speed``: GoogLeNet's contenders at batch 1 and 8 side by side (``xeon2-precision.txt``).
``lineage``: each lineage spec's paths at batch 1 against its twin (``xeon2-precision-lineage.txt``,
``bench/precision.py --spec ...``). Every ratio is one printed in the log's table, where the
script divided two times of that same table.
"""

from __future__ import annotations

import re

from tools.docs import markdown
from tools.docs.benchlogs import Log, Table

OURS = ("optimize_for_inference", "quantize")


def _bold(cell: str, ours: bool) -> str:
    return f"**{cell}**" if ours and cell else cell


def speed_table(log: Log) -> str:
    """One row per contender: batch 1 and batch 8 times and ratios, our rows in bold."""
    b1, b8 = log.table("Batch 1:"), log.table("Batch 8:")
    headers = ["model", "batch 1, ms", "vs torchvision fp32", "vs best peer",
               "batch 8, ms", "vs torchvision fp32", "vs best peer", "of bf16 floor (b8)"]  # fmt: skip
    rows = []
    for cells in b1.rows:
        one, eight = b1.row(cells[0]), b8.row(cells[0])
        ours = cells[0].startswith(OURS)
        rows.append(
            [_bold(cells[0], ours), _bold(one["ms / batch"], ours), one["vs tv fp32"], one["vs best peer"],
             _bold(eight["ms / batch"], ours), eight["vs tv fp32"], eight["vs best peer"], eight["of bf16 floor"]]
        )  # fmt: skip
    return markdown.table(headers, rows, set(range(1, len(headers))))


LINEAGE_CAPTION = re.compile(r"^(\S+), batch (\d+):$")


def lineage_tables(log: Log) -> list[tuple[str, int, Table]]:
    """``(spec, batch, table)`` for each table bench/precision.py --spec printed."""
    found = []
    for table in log.tables:
        match = LINEAGE_CAPTION.match(table.caption)
        if match:
            found.append((match[1], int(match[2]), table))
    return found


def lineage_table(log: Log) -> str:
    """One row per spec: the twin's fp32 and best peer times, each of our paths, their ratios."""
    headers = ["spec (batch)", "twin", "twin fp32, ms", "best peer, ms", "ours bf16, ms", "vs best peer",
               "bf16 compile_frozen, ms", "vs best peer", "int8, ms", "int8 vs our bf16"]  # fmt: skip
    rows = []
    for spec, batch, table in lineage_tables(log):
        by_name = {cells[0]: dict(zip(table.headers, cells)) for cells in table.rows}
        twin = table.rows[0][0].removesuffix(" fp32")
        peers = [row for name, row in by_name.items() if "autocast" in name]
        peer = min(peers, key=lambda row: float(row["ms / batch"]))
        bf16 = by_name["optimize_for_inference bf16"]
        frozen = by_name.get("optimize_for_inference bf16, compile_frozen", {})
        int8 = by_name.get("quantize int8", {})
        rows.append(
            [f"{spec} ({batch})", twin, table.rows[0][1], peer["ms / batch"], bf16["ms / batch"],
             bf16["vs best peer"], frozen.get("ms / batch", "—"), frozen.get("vs best peer", "—"),
             int8.get("ms / batch", "—"), int8.get("vs our bf16", "—")]
        )  # fmt: skip
    return markdown.table(headers, rows, set(range(2, len(headers))))


def accuracy_table(log: Log, caption: str) -> str:
    """bench/precision_accuracy.py's table under ``caption``, as printed (exponents as e-2)."""
    table = log.table(caption)
    rows = [[re.sub(r"e-0(\d)", r"e-\1", cell) for cell in cells] for cells in table.rows]
    return markdown.table(list(table.headers), rows, set(range(1, len(table.headers))))


def precision_profile_table(log: Log, name: str, count: int = 6) -> str:
    """The first ``count`` operators of the profile of ``name`` (bench/precision.py --profile)."""
    table = log.table(f"Where {name}'s time goes")
    rows = [[f"`{cells[0]}`", *cells[1:]] for cells in table.rows[:count]]
    return markdown.table(list(table.headers), rows, {1, 2, 3})
