"""Composing specs: ``extends: base.yaml`` with overrides, and ``key.path=value`` overrides.

Merging rules (the same for a child file over its base and for overrides over a spec):

- a mapping merges into a mapping key by key; ``key: null`` removes the key;
- a list replaces a list;
- a mapping over a list of named entries (``stem``, ``blocks``, ``head``, ``aux_heads``,
  ``branches``, ``layers``) patches entries by name: ``blocks: {3a: {ch1x1: 32}}``;
  ``3a: null`` removes the entry. A number addresses an entry by position when no entry
  has that name;
- anything else replaces what was there.

Every merged key keeps the location (file, line, column) where it was written, so errors
point into the file that has the problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from archbuilder.core.errors import KeyPath, Problem, SpecError, did_you_mean
from archbuilder.spec.shipped import resolve_spec_path
from archbuilder.spec.source import Location, Source, check_plain, parse_yaml

__all__ = ["Overrides", "apply_overrides", "base_path", "frozen", "merge", "walk_layers"]

Overrides = Mapping[str, Any] | Sequence[str]
Positions = dict[KeyPath, Location]


class _PrefixIndex:
    """The keys of a positions table under each key path, kept with the table: finding or
    forgetting what lies under a path costs what is there, not a scan of the whole document
    (a child patching 3,000 entries by name took seconds, growing with the square)."""

    def __init__(self, positions: Positions):
        self.positions = positions
        self.under: dict[KeyPath, dict[KeyPath, None]] = {}  # ordered sets: document order
        for key in positions:
            self._index(key)

    def _index(self, key: KeyPath) -> None:
        for end in range(len(key) + 1):
            self.under.setdefault(key[:end], {})[key] = None

    def keys_under(self, path: KeyPath) -> list[KeyPath]:
        """The keys at ``path`` and below it."""
        return list(self.under.get(path, ()))

    def set(self, key: KeyPath, location: Location) -> None:
        if key not in self.positions:
            self._index(key)
        self.positions[key] = location

    def forget(self, path: KeyPath) -> list[tuple[KeyPath, Location]]:
        """Remove the keys at ``path`` and below it; what they held, for a caller that moves them."""
        removed = []
        for key in self.keys_under(path):
            removed.append((key, self.positions.pop(key)))
            for end in range(len(key) + 1):
                keys = self.under[key[:end]]
                keys.pop(key, None)
                if not keys:
                    del self.under[key[:end]]
        return removed


class _Merger:
    def __init__(self, positions: Positions, child: Positions, describe: str):
        self.positions = _PrefixIndex(positions)  # of the merged document, updated in place
        self.child = _PrefixIndex(dict(child))  # of the document merged in
        self.describe = describe  # the child's name in messages
        self.problems: list[Problem] = []

    def fail(self, child_path: KeyPath, message: str) -> None:
        location = self._child_location(child_path)
        self.problems.append(Problem(child_path, message, *location))

    def _child_location(self, path: KeyPath) -> Location:
        for end in range(len(path), -1, -1):
            if tuple(path[:end]) in self.child.positions:
                return self.child.positions[tuple(path[:end])]
        return (self.describe, None, None)

    def forget(self, path: KeyPath) -> None:
        self.positions.forget(path)

    def replace(self, value: Any, path: KeyPath, child_path: KeyPath) -> Any:
        """``value`` from the child replaces whatever was at ``path``."""
        self.forget(path)
        for key in self.child.keys_under(child_path):
            self.positions.set(path + key[len(child_path) :], self.child.positions[key])
        return value

    def merge(self, base: Any, child: Any, path: KeyPath, child_path: KeyPath) -> Any:
        if isinstance(base, dict) and isinstance(child, dict):
            merged = dict(base)
            for key, value in child.items():
                key_path, key_child = (*path, key), (*child_path, key)
                if value is None:
                    merged.pop(key, None)
                    self.forget(key_path)
                elif key in merged:
                    merged[key] = self.merge(merged[key], value, key_path, key_child)
                    self.positions.set(key_path, self._child_location(key_child))
                else:
                    merged[key] = self.replace(value, key_path, key_child)
            return merged
        if isinstance(base, list) and isinstance(child, dict):
            return self.patch_entries(base, child, path, child_path)
        return self.replace(child, path, child_path)

    def patch_entries(self, base: list, child: dict, path: KeyPath, child_path: KeyPath) -> list:
        """Patch the named entries of a list: ``{3a: {ch1x1: 32}, pool3: null}``."""
        entries = list(base)
        names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
        first_index: dict[str, int] = {}
        for index, name in enumerate(names):
            if name is not None:
                first_index.setdefault(str(name), index)
        removed: set[int] = set()
        for key, value in child.items():
            index = _entry_index(first_index, len(names), key)
            if index is None:
                known = [name for name in names if name]
                hint = did_you_mean(str(key), known) or (f"; entries: {', '.join(known)}" if known else "")
                self.fail((*child_path, key), f"no entry named '{key}' to override{hint}")
                continue
            if value is None:
                removed.add(index)
            else:
                entries[index] = self.merge(entries[index], value, (*path, index), (*child_path, key))
        if removed:
            kept = [i for i in range(len(entries)) if i not in removed]
            self._renumber(path, kept)
            entries = [entries[i] for i in kept]
        return entries

    def _renumber(self, path: KeyPath, kept: list[int]) -> None:
        """Move the locations of the kept entries to their new positions."""
        new_index = {old: new for new, old in enumerate(kept)}
        moved: Positions = {}
        for key in self.positions.keys_under(path):
            if len(key) > len(path):
                location = self.positions.positions[key]
                old = key[len(path)]
                if old in new_index:
                    moved[(*path, new_index[old], *key[len(path) + 1 :])] = location
        for key in [key for key in self.positions.keys_under(path) if len(key) == len(path) + 1]:
            self.positions.forget(key)
        for key, location in moved.items():
            self.positions.set(key, location)


def _entry_index(first_index: dict[str, int], count: int, key: Any) -> int | None:
    if str(key) in first_index:
        return first_index[str(key)]
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        index = int(key)
        return index if 0 <= index < count else None
    return None


def merge(
    base: Any, base_source: Source, child: dict, child_source: Source, problems: list[Problem]
) -> tuple[Any, Source]:
    """``child`` merged over ``base``, with the locations of both.

    Patches that name no entry are skipped and reported in ``problems``, so that the rest of
    the spec is still checked.
    """
    positions = dict(base_source.positions)
    merger = _Merger(positions, child_source.positions, child_source.file or "<spec>")
    merged = merger.merge(base, child, (), ())
    problems.extend(merger.problems)
    return merged, Source(child_source.file, positions)


def apply_overrides(
    data: Any, source: Source, overrides: Overrides, problems: list[Problem]
) -> tuple[Any, Source]:
    """Apply ``key.path=value`` overrides (strings, or a mapping of path to value) in order.

    A string's value is parsed by the spec file parser, with its limits; a mapping's values
    are checked to be plain data within the same limits.
    """
    file = source.file
    for key_path, value in _items(overrides, problems):
        label = f"--set {key_path}"
        parts: list[Any] = key_path.split(".")
        if not all(parts):
            problems.append(Problem((), f"override '{key_path}': empty key in the path", label))
            continue
        if parts[0] == "extends":
            message = "extends cannot be overridden: overrides apply after the extends chain is loaded"
            problems.append(Problem((), message, label))
            continue
        patch: Any = value
        for part in reversed(parts):
            patch = {part: patch}
        positions = {tuple(parts[:end]): (label, None, None) for end in range(1, len(parts) + 1)}
        data, source = merge(data, source, patch, Source(label, positions), problems)
    return data, Source(file, source.positions)


def _items(overrides: Any, problems: list[Problem]) -> list[tuple[str, Any]]:
    """(key path, value) of each override that is well formed; the others go to ``problems``."""
    if isinstance(overrides, Mapping):
        items = []
        for key, value in overrides.items():
            if not isinstance(key, str):
                problems.append(
                    Problem((), f"an override's key path is a string, not {key!r}"[:200], "--set")
                )
                continue
            try:
                check_plain(value, f"--set {key}")
            except SpecError as exc:
                problems.extend(exc.problems)
                continue
            items.append((key, value))
        return items
    if isinstance(overrides, str):
        overrides = [overrides]
    if not isinstance(overrides, Sequence):
        raise TypeError(
            f"overrides is a list of 'KEY.PATH=VALUE' strings or a mapping, not {type(overrides).__name__}"
        )
    items = []
    for text in overrides:
        try:
            items.append(_split(text))
        except SpecError as exc:
            problems.extend(exc.problems)
    return items


def _split(text: Any) -> tuple[str, Any]:
    if not isinstance(text, str):
        message = f"an override is a 'KEY.PATH=VALUE' string, not {type(text).__name__}"
        raise SpecError([Problem((), message, "--set")])
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SpecError([Problem((), f"override {_quoted(text)} is not KEY.PATH=VALUE", "--set")])
    key = key.strip()
    if not value.strip():
        return key, ""
    try:
        data, _ = parse_yaml(value, f"--set {key}")  # the file parser's limits apply to values too
    except SpecError as exc:
        prefix = tuple(key.split("."))
        problems = [Problem((*prefix, *p.path), p.message, p.file, p.line, p.column) for p in exc.problems]
        raise SpecError(problems) from None
    return key, data


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:60] + "…")


def base_path(extends: Any, file: str | None, location: Location) -> Path:
    """The file an ``extends`` names, relative to the including file (or the working folder),
    or the shipped spec a bare name names (``extends: googlenet``)."""
    if not isinstance(extends, str) or not extends:
        raise SpecError(
            [Problem(("extends",), "extends must be a file path or a shipped spec's name", *location)]
        )
    return resolve_spec_path(extends, relative_to=Path(file).parent if file else None)


def walk_layers(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every layer mapping of a spec, blocks before the layers of their branches, aux heads last."""
    lists = [data.get(section, []) for section in ("stem", "blocks", "head")]
    lists += [head.get("layers", []) for head in data.get("aux_heads", [])]
    for layers in lists:
        yield from _walk(layers)


def _walk(layers: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for layer in layers:
        yield layer
        for branch in layer.get("branches", []):
            yield from _walk(branch.get("layers", []))


def frozen(value: Any) -> Any:
    """A hashable stand-in for spec data (YAML or JSON values), equal exactly when the data
    are (``==``): a key for tables of entries or options compared by content."""
    if isinstance(value, dict):
        return frozenset((key, frozen(item)) for key, item in value.items())
    if isinstance(value, list):
        return ("list", tuple(frozen(item) for item in value))
    return value
