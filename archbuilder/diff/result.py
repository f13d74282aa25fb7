"""What ``diff`` finds: each entry's change, with its numbers, as data (and as JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        """The report ``archbuild diff`` prints (:mod:`.report`)."""
        from archbuilder.diff.report import report  # the report reads these classes

        return report(self)


def _listed(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)
