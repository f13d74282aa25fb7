"""Expand block templates in spec data: each ``kind: template`` layer becomes its template's
``layer`` with the ``$name`` parameters filled in.

Runs on plain data, after ``extends`` and overrides and before validation, so everything
downstream (validation, shapes, scaling, building, drawing) sees ordinary layers. Locations
follow the expansion: a key of an expanded layer points at the line of the template that
wrote it, a substituted value at the use that gave it.
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass
from typing import Any

from archbuilder.core.errors import KeyPath, Problem, did_you_mean, format_path
from archbuilder.spec.source import MAX_DEPTH, MAX_NODES, Location, Source
from archbuilder.spec.templates import PARAM_PATTERN

__all__ = ["Origins", "expand_templates", "has_templates", "relocate"]

Origins = dict[KeyPath, tuple[KeyPath, KeyPath]]  # expanded key -> (its key in a template, the use)

_PARAM = re.compile(PARAM_PATTERN)
_USE_KEYS = ("name", "kind", "use", "with", "repeat")
_SECTIONS = ("stem", "blocks", "head")
MAX_TEMPLATE_DEPTH = 32  # templates using templates: each level is a recursion here


@dataclass(frozen=True)
class _Template:
    name: str
    params: tuple[str, ...]
    defaults: dict[str, Any]
    layer: dict[str, Any]


def has_templates(data: Any) -> bool:
    """Whether ``data`` defines templates or uses one (nothing to expand otherwise)."""
    return isinstance(data, dict) and ("templates" in data or any(True for _ in _uses(data)))


def expand_templates(data: Any, source: Source) -> tuple[Any, Source, list[Problem], Origins]:
    """``data`` with every template use expanded, its Source, the problems found, and where
    each expanded key was written in its template (for :func:`relocate`).

    A use with a problem is left as written (validation then knows it as a ``template``
    layer), so the rest of the spec is still checked. ``data`` itself is not changed.
    """
    if not has_templates(data):
        return data, source, [], {}
    expander = _Expander(copy.deepcopy(data), source)
    expander.run()
    positions = expander.positions.flat()
    return expander.data, Source(source.file, positions), expander.problems, expander.origins


def relocate(problems: list[Problem], origins: Origins) -> list[Problem]:
    """Problems inside an expanded template, re-addressed to the template's key and naming the
    uses; a problem every use shares (a typo in the template) is reported once."""
    if not origins:
        return problems
    found: dict[tuple, Problem] = {}
    uses: dict[tuple, list[str]] = {}
    for index, problem in enumerate(problems):
        path = problem.path
        prefix = next((path[:end] for end in range(len(path), 0, -1) if path[:end] in origins), None)
        if prefix is None:
            found[(index,)] = problem
            continue
        template_path, use = origins[prefix]
        moved = Problem(
            (*template_path, *path[len(prefix) :]),
            problem.message,
            problem.file,
            problem.line,
            problem.column,
        )
        key = (moved.path, moved.message, moved.file, moved.line, moved.column)
        found.setdefault(key, moved)
        uses.setdefault(key, []).append(format_path(use))
    result = []
    for key, problem in found.items():
        if key in uses:
            listed = list(dict.fromkeys(uses[key]))  # repeated copies share their use
            note = f"in the use at {listed[0]}" if len(listed) == 1 else f"in the uses at {', '.join(listed)}"
            problem = Problem(
                problem.path, f"{problem.message} ({note})", problem.file, problem.line, problem.column
            )
        result.append(problem)
    return result


def _uses(data: dict[str, Any]):
    """Every layer mapping of the spec's layer lists, nested branches included."""
    lists = [data.get(section) for section in _SECTIONS]
    heads = data.get("aux_heads")
    if isinstance(heads, list):
        lists += [head.get("layers") for head in heads if isinstance(head, dict)]
    stack = [layers for layers in lists if isinstance(layers, list)]
    while stack:
        for layer in stack.pop():
            if not isinstance(layer, dict):
                continue
            if layer.get("kind") == "template":
                yield layer
            branches = layer.get("branches")
            if isinstance(branches, list):
                stack += [
                    b["layers"] for b in branches if isinstance(b, dict) and isinstance(b.get("layers"), list)
                ]


def _references(value: Any, path: KeyPath = ()) -> list[tuple[KeyPath, str]]:
    """(path, parameter name) of every ``$name`` in ``value``."""
    if isinstance(value, str) and _PARAM.match(value):
        return [(path, value[1:])]
    if isinstance(value, dict):
        return [ref for key, item in value.items() for ref in _references(item, (*path, key))]
    if isinstance(value, list):
        return [ref for index, item in enumerate(value) for ref in _references(item, (*path, index))]
    return []


def _key_references(value: Any) -> set[str]:
    """Parameter names written as keys (``$name: ...``) anywhere in ``value``."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.update(key[1:] for key in item if isinstance(key, str) and _PARAM.match(key))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(_count(item) for item in value)
    return 1


class _TooLarge(Exception):
    """The expansion crossed MAX_NODES: stop expanding."""


class _Expander:
    def __init__(self, data: dict[str, Any], source: Source):
        self.data = data
        self.source = source
        self.positions = _Positions(source.positions)
        self.problems: list[Problem] = []
        self.templates: dict[str, _Template] = {}
        self.broken: set[str] = set()  # templates with problems of their own: uses are skipped
        self.origins: Origins = {}
        self.size = 0

    def fail(self, path: KeyPath, message: str) -> None:
        file, line, column = self.positions.location(path) or (self.source.file, None, None)
        self.problems.append(Problem(path, message, file, line, column))

    def run(self) -> None:
        self.read_templates()
        with contextlib.suppress(_TooLarge):  # reported where crossed; the rest stays unexpanded
            self.expand_all()

    def expand_all(self) -> None:
        for section in _SECTIONS:
            if isinstance(self.data.get(section), list):
                self.expand_list(self.data[section], (section,), ())
        heads = self.data.get("aux_heads")
        for index, head in enumerate(heads if isinstance(heads, list) else []):
            if isinstance(head, dict) and isinstance(head.get("layers"), list):
                self.expand_list(head["layers"], ("aux_heads", index, "layers"), ())

    # -- definitions -------------------------------------------------------------
    def read_templates(self) -> None:
        templates = self.data.get("templates", {})
        if not isinstance(templates, dict):
            return  # validation says what templates must be
        for name, definition in templates.items():
            template = self.read_template(str(name), definition) if isinstance(definition, dict) else None
            if template is None:
                self.broken.add(str(name))
            else:
                self.templates[template.name] = template

    def read_template(self, name: str, definition: dict[str, Any]) -> _Template | None:
        path: KeyPath = ("templates", name)
        params, defaults, layer = (
            definition.get("params", []),
            definition.get("defaults", {}),
            definition.get("layer"),
        )
        if not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
            return None  # validation reports the shape of params, defaults and layer
        if not isinstance(defaults, dict) or not isinstance(layer, dict):
            return None
        problems = len(self.problems)
        for index, param in enumerate(params):
            if param in params[:index]:
                self.fail((*path, "params", index), f"parameter '{param}' is listed twice")
            if param in defaults:
                self.fail((*path, "params", index), f"parameter '{param}' is also in defaults; keep one")
        declared = [*params, *defaults]
        references = _references(layer, (*path, "layer"))
        for ref_path, param in references:
            if param not in declared:
                listing = f"; template '{name}' has: {', '.join(declared)}" if declared else ""
                hint = did_you_mean(param, declared) if declared else "; declare it under params"
                self.fail(ref_path, f"unknown parameter '${param}'{hint}{listing}")
        used = {param for _, param in references}
        as_keys = _key_references(layer)
        for param in declared:
            if param not in used:
                where = (
                    (*path, "params", params.index(param)) if param in params else (*path, "defaults", param)
                )
                message = f"parameter '{param}' is never used: write ${param} in the template's layer"
                if param in as_keys:
                    message = (
                        f"parameter '{param}' is written as a key (${param}:); a parameter stands for a "
                        f"value only: write `key: ${param}`"
                    )
                self.fail(where, message)
        if len(self.problems) > problems:
            return None
        return _Template(name, tuple(params), dict(defaults), layer)

    # -- uses --------------------------------------------------------------------
    def expand_list(self, layers: list[Any], path: KeyPath, stack: tuple[str, ...]) -> None:
        for index, layer in enumerate(layers):
            layers[index] = self.expand_layer(layer, (*path, index), stack)

    def expand_layer(self, layer: Any, path: KeyPath, stack: tuple[str, ...]) -> Any:
        if not isinstance(layer, dict):
            return layer
        if len(stack) > MAX_TEMPLATE_DEPTH or len(path) > MAX_DEPTH:
            chain = " → ".join(stack[:3]) + (" → …" if len(stack) > 3 else "")
            message = f"more than {MAX_TEMPLATE_DEPTH} templates inside one another, or {MAX_DEPTH} levels"
            self.fail(path, f"templates nest too deep once expanded ({message}: {chain})")
            raise _TooLarge
        if layer.get("kind") == "template":
            expanded = self.instantiate(layer, path, stack)
            if expanded is None:
                return layer
            return self.expand_layer(expanded, path, (*stack, layer["use"]))
        branches = layer.get("branches")
        for index, branch in enumerate(branches if isinstance(branches, list) else []):
            if isinstance(branch, dict) and isinstance(branch.get("layers"), list):
                self.expand_list(branch["layers"], (*path, "branches", index, "layers"), stack)
        return layer

    def instantiate(
        self, use: dict[str, Any], path: KeyPath, stack: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """The layer ``use`` stands for, its locations recorded; None when it has a problem."""
        name, given = use.get("use"), use.get("with", {})
        if (
            any(key not in _USE_KEYS for key in use)
            or not isinstance(name, str)
            or not isinstance(given, dict)
        ):
            return None  # validation names the bad key or value
        if name in self.broken:
            return None
        template = self.templates.get(name)
        if template is None:
            known = sorted(self.templates) + sorted(self.broken)
            listing = f"; templates: {', '.join(known)}" if known else "; the spec defines no templates"
            self.fail((*path, "use"), f"unknown template '{name}'{did_you_mean(name, known)}{listing}")
            return None
        if name in stack:
            cycle = " → ".join([*stack[stack.index(name) :], name])
            self.fail((*path, "use"), f"template '{name}' uses itself: {cycle}")
            return None
        declared = [*template.params, *template.defaults]
        problems = len(self.problems)
        for key in given:
            if key not in declared:
                listing = (
                    f"; template '{name}' has: {', '.join(declared)}"
                    if declared
                    else f"; template '{name}' has none"
                )
                self.fail(
                    (*path, "with", key),
                    f"unknown parameter '{key}'{did_you_mean(str(key), declared)}{listing}",
                )
        missing = [param for param in template.params if param not in given]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            self.fail(path, f"template '{name}' needs parameter{plural} {', '.join(missing)} under with:")
        if len(self.problems) > problems:
            return None
        self.size += _count(template.layer)
        if self.size > MAX_NODES:
            self.fail((*path, "use"), f"templates expand to more than {MAX_NODES:,} values")
            raise _TooLarge
        return self.fill(template, use, given, path)

    def fill(
        self, template: _Template, use: dict[str, Any], given: dict[str, Any], path: KeyPath
    ) -> dict[str, Any]:
        """The template's layer with parameters substituted, and the locations of its keys."""
        origin = ("templates", template.name, "layer")
        value_at: dict[str, KeyPath] = {
            param: ("templates", template.name, "defaults", param) for param in template.defaults
        }
        value_at.update({param: (*path, "with", param) for param in given})
        values = {**template.defaults, **given}
        moved = _copy(self.positions.node(origin))
        for key in _keys(moved):
            self.origins[(*path, *key)] = ((*origin, *key), path)
        for ref_path, param in _references(template.layer):
            _graft(moved, ref_path, _copy(self.positions.node(value_at[param])))
        for key in ("name", "repeat"):
            if key in use:
                _graft(moved, (key,), _copy(self.positions.node((*path, key))))
        moved[_AT] = self.positions.node(path).get(_AT)  # the layer as a whole is where it is used
        self.positions.put(path, moved)

        layer = _substitute(copy.deepcopy(template.layer), values)
        for key in ("name", "repeat"):
            if key in use:
                layer[key] = use[key]
        return layer


# Locations as a tree (a dict per key path, its own location under _AT), so that moving a
# template's subtree costs its size, not the size of the whole spec.
_AT = object()
Node = dict[Any, Any]


class _Positions:
    def __init__(self, flat: dict[KeyPath, Location]):
        self.root: Node = {}
        for path, location in flat.items():
            self._make(path)[_AT] = location

    def _make(self, path: KeyPath) -> Node:
        node = self.root
        for part in path:
            node = node.setdefault(part, {})
        return node

    def node(self, path: KeyPath) -> Node:
        node = self.root
        for part in path:
            node = node.get(part)
            if node is None:
                return {}
        return node

    def put(self, path: KeyPath, subtree: Node) -> None:
        self._make(path[:-1])[path[-1]] = subtree

    def location(self, path: KeyPath) -> Location | None:
        """The location of the deepest prefix of ``path`` that has one."""
        node, found = self.root, self.root.get(_AT)
        for part in path:
            node = node.get(part)
            if node is None:
                break
            found = node.get(_AT, found)
        return found

    def flat(self) -> dict[KeyPath, Location]:
        found: dict[KeyPath, Location] = {}
        stack: list[tuple[KeyPath, Node]] = [((), self.root)]
        while stack:
            path, node = stack.pop()
            if _AT in node:
                found[path] = node[_AT]
            stack.extend(((*path, key), child) for key, child in node.items() if key is not _AT)
        return found


def _copy(node: Node) -> Node:
    return {key: value if key is _AT else _copy(value) for key, value in node.items()}


def _graft(node: Node, path: KeyPath, subtree: Node) -> None:
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = subtree


def _keys(node: Node, path: KeyPath = ()) -> list[KeyPath]:
    """The key paths under ``node`` (itself included), relative to it."""
    found = [path]
    for key, child in node.items():
        if key is not _AT:
            found += _keys(child, (*path, key))
    return found


def _substitute(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str) and _PARAM.match(value):
        return copy.deepcopy(values[value[1:]])
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    return value
