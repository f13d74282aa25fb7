"""What ``diff`` finds: each entry's change with its numbers, as data, as JSON and as the
text report ``archbuild diff`` prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archbuilder.spec.shipped import shipped_name

__all__ = ["EntryDiff", "FieldChange", "SpecDiff"]


@dataclass(frozen=True)
class FieldChange:
    """One value that differs: its dotted path, both values, and ``file:line`` of each side."""

    path: str
    old: Any
    new: Any
    old_at: str | None
    new_at: str | None


@dataclass(frozen=True)
class EntryDiff:
    """One entry of either spec and how it changed.

    ``status``: ``added``, ``removed``, ``changed`` (a field differs), ``renamed`` (only the
    name differs), ``affected`` (same text, different parameters, MACs or output shape) or
    ``unchanged``. Numbers of a missing side are 0 and its shape is None.
    """

    status: str
    name: str
    old_name: str | None
    section: str
    kind: str
    fields: tuple[FieldChange, ...]
    params: tuple[int, int]
    macs: tuple[int, int]
    shape: tuple[tuple[int, ...] | None, tuple[int, ...] | None]
    old_at: str | None
    new_at: str | None
    ir_names: tuple[str, ...]  # the IR's top-level entries of the new side (repeat copies)

    @property
    def delta_params(self) -> int:
        return self.params[1] - self.params[0]

    @property
    def delta_macs(self) -> int:
        return self.macs[1] - self.macs[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "name": self.name,
            "old_name": self.old_name,
            "section": self.section,
            "kind": self.kind,
            "fields": [field.__dict__ for field in self.fields],
            "params": {"old": self.params[0], "new": self.params[1], "delta": self.delta_params},
            "macs": {"old": self.macs[0], "new": self.macs[1], "delta": self.delta_macs},
            "out_shape": {"old": _listed(self.shape[0]), "new": _listed(self.shape[1])},
            "old_at": self.old_at,
            "new_at": self.new_at,
        }


@dataclass(frozen=True)
class SpecDiff:
    """Everything ``archbuild diff`` reports; totals include the aux heads."""

    old_model: str
    new_model: str
    spec_fields: tuple[FieldChange, ...]
    entries: tuple[EntryDiff, ...]
    params: tuple[int, int]
    macs: tuple[int, int]

    @property
    def changed(self) -> tuple[EntryDiff, ...]:
        """Entries that are not ``unchanged``."""
        return tuple(entry for entry in self.entries if entry.status != "unchanged")

    def status_of(self) -> dict[str, str]:
        """The new side's IR top-level names mapped to their status (for compare diagrams)."""
        return {name: entry.status for entry in self.entries for name in entry.ir_names}

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "old": self.old_model,
            "new": self.new_model,
            "spec_fields": [field.__dict__ for field in self.spec_fields],
            "entries": [entry.to_dict() for entry in self.changed],
            "unchanged": [entry.name for entry in self.entries if entry.status == "unchanged"],
            "total": {
                "params": {
                    "old": self.params[0],
                    "new": self.params[1],
                    "delta": self.params[1] - self.params[0],
                },
                "macs": {"old": self.macs[0], "new": self.macs[1], "delta": self.macs[1] - self.macs[0]},
            },
        }

    def text(self) -> str:
        """The report ``archbuild diff`` prints."""
        return _report(self)


def _listed(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)


# -- the text report ----------------------------------------------------------


def _count(value: int) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    return f"{sign}{abs(value):,}"


def _value(value: Any, width: int = 60) -> str:
    text = "(none)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "×".join(map(str, shape)) if shape else "-"


_MARKS = {"added": "+", "removed": "-", "changed": "~", "renamed": "→", "affected": "·"}


def _report(result: SpecDiff) -> str:
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
