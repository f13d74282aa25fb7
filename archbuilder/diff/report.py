"""The text report ``archbuild diff`` prints: one line per changed entry, its fields below."""

from __future__ import annotations

from typing import Any

from archbuilder.diff.result import EntryDiff, FieldChange, SpecDiff
from archbuilder.spec.shipped import shipped_name

__all__ = ["report"]


def _count(value: int) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    return f"{sign}{abs(value):,}"


def _value(value: Any, width: int = 60) -> str:
    text = "(none)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "×".join(map(str, shape)) if shape else "-"


_MARKS = {"added": "+", "removed": "-", "changed": "~", "renamed": "→", "affected": "·"}


def report(result: SpecDiff) -> str:
    lines = [f"{result.old_model} → {result.new_model}"]
    if result.spec_fields:
        lines.append("spec:")
        lines += [_field_line(field) for field in result.spec_fields]
    for entry in result.changed:
        lines += _entry_lines(entry)
    unchanged = [entry.name for entry in result.entries if entry.status == "unchanged"]
    if unchanged:
        lines.append(f"  = {len(unchanged)} unchanged: {', '.join(unchanged)}")
    (p0, p1), (m0, m1) = result.params, result.macs
    lines.append(f"total params: {p0:,} → {p1:,} ({_count(p1 - p0)})")
    lines.append(f"total MACs:   {m0:,} → {m1:,} ({_count(m1 - m0)})")
    return "\n".join(lines)


def _where(*ats: str | None) -> str:
    """The ``file:line`` of each side, as short as the reader wrote it: a shipped spec by its
    name (``googlenet:15``, not the installed file's absolute path), any other file as given."""
    return " · ".join(_shown(at) for at in ats if at)


def _shown(at: str) -> str:
    file, colon, line = at.rpartition(":")
    if not (colon and line.isdigit()):
        file, line = at, ""
    name = shipped_name(file) if file else None
    return at if name is None else f"{name}:{line}" if line else name


def _entry_lines(entry: EntryDiff) -> list[str]:
    name = f"{entry.old_name} → {entry.name}" if entry.old_name else entry.name
    where = _where(entry.old_at, entry.new_at)
    head = f"{_MARKS[entry.status]} {name} ({entry.kind}, {entry.section}) {entry.status}"
    lines = [f"{head}   {where}"]
    lines += [_field_line(field) for field in entry.fields]
    old_shape, new_shape = entry.shape
    if old_shape and new_shape and old_shape != new_shape:
        lines.append(f"    out shape: {_shape(old_shape)} → {_shape(new_shape)}")
    if entry.delta_params or entry.delta_macs:
        lines.append(f"    Δparams {_count(entry.delta_params)} · ΔMACs {_count(entry.delta_macs)}")
    return lines


def _field_line(field: FieldChange) -> str:
    where = _where(field.old_at, field.new_at)
    return f"    {field.path}: {_value(field.old)} → {_value(field.new)}   {where}"
