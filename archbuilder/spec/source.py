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

from archbuilder.errors import KeyPath, Problem, SpecError

__all__ = ["Location", "Source", "parse_yaml"]

# libyaml's parser when PyYAML has it (about 10× faster); its composer recurses in C, which
# is safe because _check_nesting bounds the depth first, reading events iteratively.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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
    def __init__(self, file: str | None):
        self.file = file
        self.positions: dict[KeyPath, Location] = {}
        self.problems: list[Problem] = []
        self.constructor = yaml.SafeLoader("")
        self.count = 0

    def at(self, node: Node) -> Location:
        return self.file, node.start_mark.line + 1, node.start_mark.column + 1

    def fail(self, path: KeyPath, node: Node, message: str) -> None:
        self.problems.append(Problem(path, message, *self.at(node)))

    def build(self, node: Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            message = f"the document expands to more than {MAX_NODES:,} values (aliases nested too deep?)"
            raise _TooLarge(node, message, path)
        self.positions.setdefault(path, self.at(node))
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.fail(path, node, f"unsupported YAML tag {node.tag!r}; specs hold plain data only")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            self.fail(path, node, f"unsupported YAML tag {node.tag!r}; specs hold plain data only")
        self.constructor.flatten_mapping(node)  # resolves `<<` merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.fail(path, key_node, "mapping keys must be plain names")
                continue
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                self.fail((*path, key), key_node, f"duplicate key '{key}' (an earlier line sets it too)")
                continue
            self.positions[(*path, key)] = self.at(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        try:
            return self.constructor.construct_object(node)
        except yaml.constructor.ConstructorError:
            self.fail(path, node, f"unsupported YAML tag {node.tag!r}; specs hold plain data only")
            return None


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
