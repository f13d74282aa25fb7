"""Parse YAML text into plain data plus a map from key paths to source positions.

The spec models never see YAML; this module is the only place that does. It uses
PyYAML's safe composer, so no tag can construct a Python object, and it builds the
data itself so that duplicate keys are caught and alias expansion is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from archbuilder.core.errors import KeyPath, Problem, SpecError
from archbuilder.spec.yaml_core import (
    BOOL,
    FLOAT,
    INT,
    MAX_INT_DIGITS,
    MERGE,
    NULL,
    STR,
    CoreLoader,
    ScalarError,
    construct_scalar,
)

__all__ = ["Location", "Source", "check_plain", "parse_yaml"]

# libyaml's parser when PyYAML has it (about 10× faster); its composer recurses in C, which
# is safe because _check_nesting bounds the depth first, reading events iteratively.
_LOADER = CoreLoader
MAX_NODES = 200_000  # bounds alias ("billion laughs") expansion
MAX_DEPTH = 64  # specs nest a few levels; thousands is an attack or an accident


Location = tuple[str | None, int | None, int | None]  # file, line, column (1-based)


@dataclass(frozen=True)
class Source:
    """Where a spec came from: its file, and where each key path was written.

    A spec that ``extends`` another, or was given overrides, has keys from several places,
    so every location names its own file.
    """

    file: str | None = None
    positions: dict[KeyPath, Location] = field(default_factory=dict)

    def problem(self, path: KeyPath, message: str) -> Problem:
        """A Problem at the deepest prefix of ``path`` that has a known location."""
        for end in range(len(path), -1, -1):
            location = self.positions.get(tuple(path[:end]))
            if location is not None:
                return Problem(path, message, *location)
        return Problem(path, message, self.file)


class _Builder:
    """Plain data from a composed node graph: aliases expanded (bounded), cycles found."""

    def __init__(self, file: str | None):
        self.file = file
        self.positions: dict[KeyPath, Location] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.seen: set[int] = set()  # ids of nodes built once: seeing one again means an alias
        self.aliased = False
        self.active: set[int] = set()  # nodes being built now: meeting one again is a cycle

    def at(self, node: Node) -> Location:
        return self.file, node.start_mark.line + 1, node.start_mark.column + 1

    def fail(self, path: KeyPath, node: Node, message: str) -> None:
        self.problems.append(Problem(path, message, *self.at(node)))

    def build(self, node: Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge(node, self._too_many(), path)
        if len(path) > MAX_DEPTH:
            message = f"the document nests deeper than {MAX_DEPTH} levels once its aliases are expanded"
            raise _TooLarge(node, message, path)
        self.positions.setdefault(path, self.at(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise _TooLarge(
                node, "an alias here refers to a mapping or list that contains it (a cycle)", path
            )
        self.aliased = self.aliased or id(node) in self.seen
        self.seen.add(id(node))
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            if node.tag != "tag:yaml.org,2002:seq":
                self.fail(
                    path, node, f"unsupported YAML tag {_shown_tag(node.tag)}; specs hold plain data only"
                )
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def _too_many(self) -> str:
        if self.aliased:
            return f"the document expands to more than {MAX_NODES:,} values (aliases nested too deep?)"
        return f"the document holds more than {MAX_NODES:,} values; no spec needs that many"

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            self.fail(path, node, f"unsupported YAML tag {_shown_tag(node.tag)}; specs hold plain data only")
        merged: dict[str, Any] = {}
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE and isinstance(key_node, ScalarNode):
                self.merge(value_node, path, merged)
                continue
            if not isinstance(key_node, ScalarNode):
                self.fail(path, key_node, "mapping keys must be plain names")
                continue
            if key_node.tag not in (STR, NULL, BOOL, INT, FLOAT):
                self.fail(path, key_node, f"unsupported YAML tag {_shown_tag(key_node.tag)} on a key")
                continue
            key = key_node.value  # as written: `true`, `010` and `1.0` are names here, not values
            if key in result:
                self.fail((*path, key), key_node, f"duplicate key '{key}' (an earlier line sets it too)")
                continue
            self.positions[(*path, key)] = self.at(key_node)
            result[key] = self.build(value_node, (*path, key))
        # A merge key's entries come first; keys written in the mapping itself override them.
        return {**{key: value for key, value in merged.items() if key not in result}, **result}

    def merge(self, value: Node, path: KeyPath, merged: dict[str, Any]) -> None:
        """Entries of a ``<<`` merge key (a mapping, or a list of them: earlier ones win)."""
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, MappingNode):
                shown = _shown_value(source)
                message = f"a merge key '<<' takes a mapping (an alias such as *base) or a list of them, not {shown}"
                self.fail(path, source, message)
                continue
            for key, item in self.build(source, path).items():
                merged.setdefault(key, item)

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        try:
            return construct_scalar(node)
        except ScalarError as exc:
            self.fail(path, node, str(exc))
            return None


def _shown_tag(tag: str) -> str:
    return repr(tag if len(tag) <= 100 else tag[:100] + "…")


def _shown_value(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return repr(node.value if len(node.value) <= 40 else node.value[:40] + "…")
    return "a list" if isinstance(node, SequenceNode) else "a mapping"


class _TooLarge(Exception):
    def __init__(self, node: Node, message: str, path: KeyPath):
        super().__init__(message)
        self.node = node
        self.path = path


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, Source]:
    """Parse one YAML document into plain data and its Source; raise SpecError if it isn't one."""
    try:
        _check_nesting(text, file)
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError([_syntax_problem(exc, text, file)]) from None
    if root is None:
        raise SpecError([Problem((), "the spec is empty", file, 1, 1)])
    builder = _Builder(file)
    try:
        data = builder.build(root, ())
    except _TooLarge as exc:
        builder.fail(exc.path[:1], exc.node, str(exc))
        data = None
    if builder.problems:
        raise SpecError(builder.problems)
    return data, Source(file, builder.positions)


def _check_nesting(text: str, file: str | None) -> None:
    """Refuse documents nested deeper than MAX_DEPTH, reading events (no recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line, column = event.start_mark.line + 1, event.start_mark.column + 1
                message = f"the document nests deeper than {MAX_DEPTH} levels"
                raise SpecError([Problem((), message, file, line, column)])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _syntax_problem(exc: yaml.YAMLError, text: str, file: str | None) -> Problem:
    if isinstance(exc, yaml.composer.ComposerError) and "single document" in str(exc.context):
        mark = exc.problem_mark
        message = "a spec file holds one YAML document; this '---' starts a second one"
        return Problem((), message, file, mark.line + 1, mark.column + 1)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context == "while scanning a simple key" and exc.context_mark:
            start = exc.context_mark.index
            end = text.find("\n", start)
            if (end if end >= 0 else len(text)) - start > 1024:
                message += " (a key may be at most 1,024 characters long; is this a key at all?)"
        if exc.context and exc.context_mark and exc.problem_mark:
            start = exc.context_mark
            message += f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
        return Problem((), message, file, line, column)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return Problem(
            (), f"invalid YAML: character U+{code:04X} is not allowed in a spec", file, line, column
        )
    return Problem((), f"invalid YAML: {exc}", file)


def check_plain(value: Any, where: str) -> None:
    """Refuse a Python value (an override given as data) that a spec file could not hold:
    other types, non-string keys, huge integers, cycles, or more nesting or values than
    :func:`parse_yaml` allows."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            limit = f"{MAX_NODES:,} values" if count > MAX_NODES else f"{MAX_DEPTH} levels of nesting"
            raise SpecError([Problem((), f"the value holds more than {limit} (or refers to itself)", where)])
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise SpecError([Problem((), "mapping keys must be strings", where)])
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 4 * MAX_INT_DIGITS:
            raise SpecError([Problem((), "an integer far too large for a spec", where)])
        elif item is not None and not isinstance(item, (bool, int, float, str)):
            kind = type(item).__name__
            raise SpecError(
                [
                    Problem(
                        (), f"a spec holds plain data (numbers, strings, lists, mappings), not {kind}", where
                    )
                ]
            )
