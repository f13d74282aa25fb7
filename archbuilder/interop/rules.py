"""The rename-rule engine: tensor names of a reference implementation ↔ a spec-built model's.

A rule is a pair of templates, ``(reference side, model side)``, each a dotted module path in
which ``{field}`` stands for a piece of text matched by that field's regular expression
(``{n+1}`` for a number field written one higher on this side: timm's ``repeat.0`` is the
spec's ``block35_1``). A rule renames the module it names and keeps everything below it:
``("inception{block}.branch1", "{block}.branch1x1.conv")`` maps
``inception3a.branch1.bn.weight`` to ``3a.branch1x1.conv.bn.weight``. A rule may also name a
whole tensor (torchvision ConvNeXt's ``features.1.0.layer_scale``), which it renames alone.

Rules come in passes. In each pass the first rule whose one side matches the start of a name
rewrites it into the other side; a name no rule of a pass matches goes through that pass
unchanged. A name that no pass changes has no counterpart. The reverse direction runs the
passes backwards with their sides swapped, which is how an error names, for a model tensor
nobody filled, the reference tensor it needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FIELD", "Renamer", "Rule", "RuleError", "template_fields"]

FIELD = re.compile(r"\{(\w+)([+-]\d+)?\}")  # {name} or {name+1} / {name-3}


class RuleError(ValueError):
    """A rule is not well formed (an unknown field, sides with different fields)."""


def template_fields(template: str) -> list[tuple[str, int]]:
    """The ``(field, offset)`` pairs of a template, in order."""
    return [(name, int(offset or 0)) for name, offset in FIELD.findall(template)]


@dataclass(frozen=True)
class _Side:
    """One side of a rule, compiled: a pattern that matches a name's start, and a template."""

    pattern: re.Pattern[str]
    template: str
    offsets: dict[str, int]

    def match(self, name: str) -> tuple[dict[str, str], int] | None:
        """The fields' canonical values and where the match ends, or None."""
        found = self.pattern.match(name)
        if found is None:
            return None
        values = {key: value for key, value in found.groupdict().items() if value is not None}
        for key, offset in self.offsets.items():
            if not values[key].isdigit():  # an offset field's text must be a number to shift
                return None
            values[key] = str(int(values[key]) - offset)
        return values, found.end()

    def format(self, values: Mapping[str, str]) -> str:
        def fill(found: re.Match[str]) -> str:
            value, offset = values[found[1]], int(found[2] or 0)
            return str(int(value) + offset) if offset else value

        return FIELD.sub(fill, self.template)


def _side(template: str, fields: Mapping[str, str]) -> _Side:
    pattern, seen, offsets, position = "", set(), {}, 0
    for found in FIELD.finditer(template):
        name, offset = found[1], int(found[2] or 0)
        if name not in fields:
            raise RuleError(f"{template!r}: unknown field {{{name}}}; define it under fields")
        pattern += re.escape(template[position : found.start()])
        position = found.end()
        if offset:
            offsets[name] = offset
        if name in seen:  # a field written twice matches the same text twice
            pattern += f"(?P={name})"
        else:
            seen.add(name)
            pattern += f"(?P<{name}>{fields[name]})"
    pattern += re.escape(template[position:])
    return _Side(re.compile(pattern + r"(?:\.|$)"), template, offsets)  # a module's start, or a whole name


@dataclass(frozen=True)
class Rule:
    """A compiled rule: ``source`` is the reference's side, ``target`` the model's."""

    source: _Side
    target: _Side

    @classmethod
    def compile(cls, source: str, target: str, fields: Mapping[str, str]) -> Rule:
        left, right = template_fields(source), template_fields(target)
        if {name for name, _ in left} != {name for name, _ in right}:
            raise RuleError(f"[{source!r}, {target!r}]: both sides must use the same fields")
        return cls(_side(source, fields), _side(target, fields))


def _forward(name: str, rules: Sequence[Rule]) -> str | None:
    for rule in rules:
        matched = rule.source.match(name)
        if matched is not None:
            values, end = matched
            return _joined(rule.target.format(values), name[end:])
    return None


def _joined(module: str, rest: str) -> str:
    return f"{module}.{rest}" if rest else module


def _backward(name: str, rules: Sequence[Rule]) -> list[str]:
    """Every name one pass could have turned into ``name``: each rule's, then ``name`` itself."""
    found = []
    for rule in rules:
        matched = rule.target.match(name)
        if matched is not None:
            values, end = matched
            found.append(_joined(rule.source.format(values), name[end:]))
    return [*found, name]


class Renamer:
    """Passes of rules, applied in order (reference → model) or backwards (model → reference)."""

    def __init__(self, passes: Sequence[Sequence[Rule]]):
        self.passes = tuple(tuple(rules) for rules in passes)

    def to_model(self, name: str) -> str | None:
        """The model's name for a reference tensor, or None when no rule maps it."""
        changed = False
        for rules in self.passes:
            renamed = _forward(name, rules)
            if renamed is not None:
                name, changed = renamed, True
        return name if changed else None

    def to_source(self, name: str) -> str | None:
        """The reference's name that :meth:`to_model` maps to ``name``, or None.

        Running a pass backwards is ambiguous (a name a rule could have produced may also have
        gone through unchanged), so each candidate is checked by running it forwards.
        """
        candidates = [name]
        for rules in reversed(self.passes):
            candidates = [earlier for later in candidates for earlier in _backward(later, rules)]
        for candidate in candidates:
            if candidate != name and self.to_model(candidate) == name:
                return candidate
        return name if self.to_model(name) == name else None
