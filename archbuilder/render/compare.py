"""Compare diagrams: the new spec drawn with what changed from the old one marked, down to
the ops inside a changed block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archbuilder.diff import diff
from archbuilder.ir import IR, as_spec, lower
from archbuilder.render.style import STATUS_COLOURS, describe
from archbuilder.spec import ArchSpec

__all__ = ["STATUS_COLOURS", "compare_marks"]


def compare_marks(old: ArchSpec | str | Path, new: ArchSpec) -> dict[str, Any]:
    """What changed from ``old`` to ``new``, for drawing ``new``.

    ``status``: each changed top-level entry of ``new`` (IR names) and how; ``changes``: its
    changed fields; ``removed``: entries ``new`` no longer has; ``compare``: ``old``'s model
    name; ``ops``: each op inside a changed entry that was added, or whose attributes changed
    (``(status, ["kernel 5×5 → 3×3", …])``); ``removed_ops``: per entry, what its old version
    had that it lost (``branch5x5.conv5x5 · conv 5×5 → 32``).
    """
    old_spec = as_spec(old)
    result = diff(old_spec, new)
    changes = {
        name: [{"path": f.path, "old": f.old, "new": f.new} for f in entry.fields]
        for entry in result.entries
        for name in entry.ir_names
    }
    renamed = {entry.name: entry.old_name for entry in result.entries if entry.old_name}
    status = {name: status for name, status in result.status_of().items() if status != "unchanged"}
    ops, removed_ops = _op_changes(lower(old_spec), lower(new), status, renamed)
    return {
        "status": status,
        "changes": changes,
        "removed": [entry.name for entry in result.entries if entry.status == "removed"],
        "compare": result.old_model,
        "ops": ops,
        "removed_ops": removed_ops,
    }


def _op_changes(
    old: IR, new: IR, status: dict[str, str], renamed: dict[str, str]
) -> tuple[dict[str, tuple[str, list[str]]], dict[str, list[str]]]:
    """Op-level marks inside the changed entries, matched by their ids inside the entry."""
    old_entries = {entry.name: entry for entry in old.top_level}
    ops: dict[str, tuple[str, list[str]]] = {}
    removed: dict[str, list[str]] = {}
    for entry in new.top_level:
        if status.get(entry.name) not in ("changed", "renamed"):
            continue
        old_name = _old_name(entry.name, renamed)
        before = old_entries.get(old_name)
        if before is None:
            continue
        old_ops = {op_id[len(old_name) :]: old.op(op_id) for op_id in before.ops}
        for op_id in entry.ops:
            op, was = new.op(op_id), old_ops.pop(op_id[len(entry.name) :], None)
            if was is None:
                ops[op_id] = ("added", [])
            elif _changed_attrs(was, op):
                ops[op_id] = ("changed", _changed_attrs(was, op))
        if old_ops:
            removed[entry.name] = [f"{inner.lstrip('.')} · {describe(op)}" for inner, op in old_ops.items()]
    return ops, removed


def _old_name(name: str, renamed: dict[str, str]) -> str:
    """The old side's name of a new top-level entry (a renamed repeat's copies too)."""
    for new_name, old_name in renamed.items():
        if name == new_name or name.startswith(f"{new_name}_"):
            return old_name + name[len(new_name) :]
    return name


def _changed_attrs(old, new) -> list[str]:
    if old.kind != new.kind:
        return [f"{describe(old)} → {describe(new)}"]
    # a merge's inputs name ops: a new op in a branch changes them, which its mark says
    keys = [key for key in new.attrs if key != "inputs" and old.attrs.get(key) != new.attrs[key]]
    return [f"{key} {_value(old.attrs.get(key))} → {_value(new.attrs[key])}" for key in keys]


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(map(str, value))
    return str(value)
