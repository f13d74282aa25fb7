"""What changed between two specs, entry by entry: ``diff(a, b)`` and ``archbuild diff``.

An entry is one layer as written in ``stem``, ``blocks``, ``head`` or ``aux_heads`` (a
``repeat`` is one entry, all its copies counted). Entries are matched by name, then a renamed
entry by equal content, then by position in its section; what is left is added or removed.
Each changed field is reported with its old and new value and where each side wrote it.
Parameters, MACs and output shapes come from the two IRs, so an entry whose text did not
change but whose numbers did (an inherited default, a wider input) is reported as
``affected``. No torch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbuilder.errors import KeyPath
from archbuilder.ir import IR, lower
from archbuilder.spec import ArchSpec, as_spec
from archbuilder.spec.shipped import shipped_name
from archbuilder.spec.source import Source
from archbuilder.spec.walk import frozen

__all__ = ["EntryDiff", "FieldChange", "SpecDiff", "diff"]

SECTIONS = ("stem", "blocks", "head", "aux_heads")
_SPEC_FIELDS = ("name", "description", "input", "num_classes", "defaults", "scale")


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


@dataclass(frozen=True)
class _Entry:
    section: str
    index: int
    name: str
    kind: str
    content: dict[str, Any]  # the layer as validated, defaults filled in, without its name
    params: int
    macs: int
    shape: tuple[int, ...]
    ir_names: tuple[str, ...]


class _Side:
    """One spec with its IR, its entries, and where each key was written."""

    def __init__(self, spec: ArchSpec):
        self.spec = spec
        self.ir: IR = lower(spec)
        self.source: Source = spec.source or Source()
        self.entries = list(self._entries())

    def _entries(self) -> Iterator[_Entry]:
        tops: dict[tuple[str, int], list] = {}
        for top in self.ir.top_level:
            section, index = self.ir.op(top.ops[0]).spec_path[:2]
            tops.setdefault((section, index), []).append(top)
        for section in SECTIONS:
            for index, layer in enumerate(getattr(self.spec, section)):
                copies = tops.get((section, index), [])
                ops = [self.ir.op(op_id) for top in copies for op_id in top.ops]
                content = layer.model_dump(mode="json")
                name = content.pop("name", None) or copies[0].name
                yield _Entry(
                    section,
                    index,
                    name,
                    copies[0].kind,
                    content,
                    sum(op.params for op in ops),
                    sum(op.macs for op in ops),
                    self.ir.op(copies[-1].output).shape,
                    tuple(top.name for top in copies),
                )

    def at(self, path: KeyPath) -> str | None:
        """``file:line`` of the deepest prefix of ``path`` whose position is known."""
        for end in range(len(path), -1, -1):
            location = self.source.positions.get(tuple(path[:end]))
            if location is not None:
                file, line, _ = location
                return f"{file or '<spec>'}:{line}" if line else file
        return None


def diff(a: ArchSpec | str | Path, b: ArchSpec | str | Path) -> SpecDiff:
    """What changed from spec ``a`` to spec ``b`` (paths, YAML text or loaded specs)."""
    old, new = (_Side(as_spec(spec)) for spec in (a, b))
    pairs = _match(old.entries, new.entries)
    entries = tuple(_entry_diff(old, new, x, y) for x, y in _in_order(pairs, old.entries, new.entries))
    spec_fields = tuple(
        change
        for key in _SPEC_FIELDS
        for change in _changes(old, new, (key,), (key,), _dump(old.spec, key), _dump(new.spec, key), (key,))
    )
    return SpecDiff(
        old.ir.name,
        new.ir.name,
        spec_fields,
        entries,
        (old.ir.total()[0], new.ir.total()[0]),
        (old.ir.total()[1], new.ir.total()[1]),
    )


def _dump(spec: ArchSpec, key: str) -> Any:
    value = getattr(spec, key)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _match(old: list[_Entry], new: list[_Entry]) -> dict[int, int]:
    """Old entry index → new entry index: by name, renamed by content, then by position.

    Each pass pairs an unpaired old entry with the first unpaired new entry that has the same
    key, looked up in a table: linear in the entries, however few of them match."""
    pairs: dict[int, int] = {}
    by_name = {entry.name: j for j, entry in enumerate(new)}
    for i, entry in enumerate(old):
        if entry.name in by_name:
            pairs[i] = by_name[entry.name]
    for key in (
        lambda entry: (entry.section, frozen(entry.content)),
        lambda entry: (entry.section, entry.index),
    ):
        taken = set(pairs.values())
        free: dict[Any, deque[int]] = {}
        for j, entry in enumerate(new):
            if j not in taken:
                free.setdefault(key(entry), deque()).append(j)
        for i, entry in enumerate(old):
            if i not in pairs and (waiting := free.get(key(entry))):
                pairs[i] = waiting.popleft()
    return pairs


def _in_order(
    pairs: dict[int, int], old: list[_Entry], new: list[_Entry]
) -> Iterator[tuple[_Entry | None, _Entry | None]]:
    """Pairs in the new spec's order; a removed entry follows its old predecessor's partner."""
    partner = {j: i for i, j in pairs.items()}
    removed_after: dict[int, list[int]] = {}
    anchor = -1
    for i in range(len(old)):
        if i in pairs:
            anchor = pairs[i]
        else:
            removed_after.setdefault(anchor, []).append(i)
    yield from ((old[i], None) for i in removed_after.get(-1, []))
    for j, entry in enumerate(new):
        yield (old[partner[j]] if j in partner else None), entry
        yield from ((old[i], None) for i in removed_after.get(j, []))


def _entry_diff(old: _Side, new: _Side, x: _Entry | None, y: _Entry | None) -> EntryDiff:
    some = y or x
    assert some is not None
    old_path = (x.section, x.index) if x else None
    new_path = (y.section, y.index) if y else None
    fields: tuple[FieldChange, ...] = ()
    if x and y:
        fields = tuple(_changes(old, new, old_path, new_path, x.content, y.content))
        status = "changed" if fields else "renamed" if x.name != y.name else "unchanged"
        if status == "unchanged" and (x.params, x.macs, x.shape) != (y.params, y.macs, y.shape):
            status = "affected"
    else:
        status = "added" if y else "removed"
    return EntryDiff(
        status,
        some.name,
        x.name if x and y and x.name != y.name else None,
        some.section,
        some.kind,
        fields,
        (x.params if x else 0, y.params if y else 0),
        (x.macs if x else 0, y.macs if y else 0),
        (x.shape if x else None, y.shape if y else None),
        old.at(old_path) if old_path else None,
        new.at(new_path) if new_path else None,
        y.ir_names if y else (),
    )


def _changes(
    old: _Side, new: _Side, old_prefix: KeyPath, new_prefix: KeyPath, a: Any, b: Any, label: tuple = ()
) -> Iterator[FieldChange]:
    """Every leaf that differs between ``a`` and ``b``, located under each side's key path."""
    for path, shown, before, after in _leaf_changes(a, b, (), label):
        yield FieldChange(
            ".".join(shown), before, after, old.at((*old_prefix, *path)), new.at((*new_prefix, *path))
        )


def _leaf_changes(a: Any, b: Any, path: KeyPath, shown: tuple[str, ...]) -> Iterator[tuple]:
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict) and a.get("kind") == b.get("kind"):
        for key in [*a, *(key for key in b if key not in a)]:
            yield from _leaf_changes(a.get(key), b.get(key), (*path, key), (*shown, str(key)))
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            label = x.get("name") if isinstance(x, dict) and x.get("name") == y.get("name") else None
            yield from _leaf_changes(x, y, (*path, index), (*shown, str(label or index)))
        return
    yield path, shown, a, b


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
