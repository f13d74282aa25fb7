"""Matching two specs' entries and comparing each pair: by name, then a renamed entry by
equal content, then by position in its section; what is left is added or removed."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbuilder.core.errors import KeyPath
from archbuilder.diff.result import EntryDiff, FieldChange, SpecDiff
from archbuilder.ir import IR, as_spec, lower
from archbuilder.spec import ArchSpec
from archbuilder.spec.compose import frozen
from archbuilder.spec.source import Source

__all__ = ["diff"]

SECTIONS = ("stem", "blocks", "head", "aux_heads")
_SPEC_FIELDS = ("name", "description", "input", "num_classes", "defaults", "scale")


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
