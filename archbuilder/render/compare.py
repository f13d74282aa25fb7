"""Compare diagrams: the new spec drawn with what changed from the old one marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archbuilder.diff import diff
from archbuilder.spec import ArchSpec, load_spec

__all__ = ["STATUS_COLOURS", "compare_marks"]

# Outline colours of the marked entries (and the legend's key); removed ones are listed.
STATUS_COLOURS = {
    "added": "#1a7f37",
    "changed": "#d4770c",
    "renamed": "#6f42c1",
    "affected": "#8c8c8c",
}


def compare_marks(old: ArchSpec | str | Path, new: ArchSpec) -> dict[str, Any]:
    """Status of each of ``new``'s top-level entries against ``old``, their changed fields,
    and the names of the entries ``new`` no longer has."""
    old_spec = old if isinstance(old, ArchSpec) else load_spec(old)
    result = diff(old_spec, new)
    changes = {
        name: [{"path": f.path, "old": f.old, "new": f.new} for f in entry.fields]
        for entry in result.entries
        for name in entry.ir_names
    }
    return {
        "status": {name: status for name, status in result.status_of().items() if status != "unchanged"},
        "changes": changes,
        "removed": [entry.name for entry in result.entries if entry.status == "removed"],
        "compare": result.old_model,
    }
