"""Read a search space: find its decisions in the raw spec data, check how each is written.

A decision is a mapping with one of the keys ``choice`` (a list of options, any values,
whole layers included), ``range`` (``low``, ``high``, optional ``step`` and ``log``) or
``same`` (the name of another decision: its value again). ``id`` names a choice or range.
The result is a template: the data with each decision replaced by a :class:`Slot` (and
each ``same`` by a :class:`Same`), and the source locations sorted into those that every
candidate has and those that come with one option.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from archbuilder.core.errors import KeyPath, Problem, did_you_mean
from archbuilder.space.budget import MAX_OPTIONS, MAX_RANGE_NUMBER, MAX_RANGE_VALUES
from archbuilder.space.constraints import Constraints, parse_constraints
from archbuilder.space.decisions import Decision, is_scalar
from archbuilder.spec.blocks import LAYER_TYPES, Branch, InceptionPool
from archbuilder.spec.compose import frozen
from archbuilder.spec.layers import ConvOptions
from archbuilder.spec.model import ArchSpec, AuxHead, Defaults, InputShape, Scale
from archbuilder.spec.source import Location, Source

__all__ = ["DynDict", "DynList", "Parsed", "Same", "Slot", "parse_space"]

MARKERS = ("choice", "range", "same")
_KEYS = {"choice": ("choice", "id"), "range": ("range", "id"), "same": ("same",)}
_RANGE_KEYS = ("low", "high", "step", "log")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Slot:
    """A decision in place: its compiled options and the locations each option brings."""

    decision: Decision
    options: list[Any] = field(default_factory=list)
    positions: list[dict[KeyPath, Location]] = field(default_factory=list)  # relative to the slot


@dataclass(frozen=True)
class Same:
    """``{same: target}``: the value of decision ``target``."""

    target: str
    path: KeyPath


class DynDict(dict):
    """A mapping of the template with a decision somewhere inside (others are shared as-is)."""


class DynList(list):
    """A list of the template with a decision somewhere inside."""


@dataclass(frozen=True)
class Parsed:
    template: dict[str, Any]
    static: dict[KeyPath, Location]  # locations every candidate has
    decisions: tuple[Decision, ...]  # document order, nested ones after their choice
    slots: dict[str, Slot]
    constraints: Constraints
    file: str | None


def _dynamic(node: Any) -> bool:
    return isinstance(node, (Slot, Same, DynDict, DynList))


def parse_space(data: dict[str, Any], source: Source) -> tuple[Parsed, list[Problem]]:
    """The template and decisions of space ``data``, and every problem in how they are written."""
    data = dict(data)
    constraints, problems = parse_constraints(data.pop("constraints", None), source)
    parser = _Parser(source)
    template = parser.node(data, (), (), None, "", ())
    if any(path[:1] == ("constraints",) for path in parser.decision_paths):
        problems.append(source.problem(("constraints",), "constraints are fixed numbers, not decisions"))
    parser.check_sames()
    static = parser.sort_positions()
    parsed = Parsed(template, static, tuple(parser.decisions), parser.slots, constraints, source.file)
    return parsed, [*problems, *parser.problems]


@functools.cache
def _field_names() -> frozenset[str]:
    """Every key a spec model has (a decision's misspelt marker is none of them)."""
    models = [
        *LAYER_TYPES,
        ArchSpec,
        AuxHead,
        Branch,
        ConvOptions,
        Defaults,
        InceptionPool,
        InputShape,
        Scale,
    ]
    return frozenset(field.alias or name for model in models for name, field in model.model_fields.items())


def _entry_name(item: Any) -> str | None:
    """The name of a list entry, for decision names: its own, or the one all its options share."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("choice"), list):
        names = [option.get("name") for option in item["choice"] if isinstance(option, dict)]
        return (
            names[0] if names and isinstance(names[0], str) and names.count(names[0]) == len(names) else None
        )
    name = item.get("name")
    return name if isinstance(name, str) and "choice" not in item and "same" not in item else None


def _labels(options: list[Any]) -> tuple[str, ...]:
    """Names for the options of a choice that holds more than plain values: a layer by its
    kind (else its name), a value or a list of values as YAML writes it, else by position."""
    for key in ("kind", "name"):
        labels = [_label(option, key) for option in options]
        if all(isinstance(label, str) for label in labels) and len(set(labels)) == len(labels):
            return tuple(labels)
    return tuple(str(index) for index in range(len(options)))


def _label(option: Any, key: str) -> str | None:
    if isinstance(option, dict):
        return option.get(key) if isinstance(option.get(key), str) else None
    if isinstance(option, list) and all(is_scalar(item) for item in option):
        return "[" + ", ".join(map(_scalar_text, option)) + "]"
    return _scalar_text(option) if is_scalar(option) else None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _scalar_text(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


class _Parser:
    def __init__(self, source: Source):
        self.source = source
        self.problems: list[Problem] = []
        self.decisions: list[Decision] = []
        self.slots: dict[str, Slot] = {}
        self.decision_paths: set[KeyPath] = set()
        self.dropped: set[KeyPath] = set()  # base keys a decision replaces
        self.sames: list[tuple[Same, tuple[str, ...]]] = []  # with the decisions around each

    def fail(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.source.problem(path, message))

    def node(
        self,
        value: Any,
        path: KeyPath,
        label: tuple[str, ...],
        parent: tuple[str, int] | None,
        prefix: str,
        around: tuple[str, ...],
    ) -> Any:
        """``value`` compiled: decisions become Slots; containers holding any become Dyn*."""
        if isinstance(value, dict):
            if any(marker in value for marker in MARKERS):
                return self.decision(value, path, label, parent, prefix, around)
            self.near_miss(value, path)
            items = {
                key: self.node(item, (*path, key), (*label, str(key)), parent, prefix, around)
                for key, item in value.items()
            }
            return DynDict(items) if any(map(_dynamic, items.values())) else value
        if isinstance(value, list):
            names = [_entry_name(item) for item in value]
            counts = Counter(names)
            items = [
                self.node(
                    item,
                    (*path, index),
                    (*label, names[index] if names[index] and counts[names[index]] == 1 else str(index)),
                    parent,
                    prefix,
                    around,
                )
                for index, item in enumerate(value)
            ]
            return DynList(items) if any(map(_dynamic, items)) else value
        return value

    def near_miss(self, value: dict, path: KeyPath) -> None:
        """A misspelt decision, ``{choise: [8, 16]}``: a lone unknown key close to a marker,
        holding what that marker holds."""
        keys = [key for key in value if key != "id"]
        if len(keys) != 1 or keys[0] in _field_names():
            return
        key = keys[0]
        hint = did_you_mean(str(key), MARKERS)
        marker = hint.split("'")[1] if hint else None
        holds = {"choice": list, "range": dict, "same": str}
        if marker and isinstance(value[key], holds[marker]):
            self.fail(
                (*path, key),
                f"unknown key '{key}'{hint}: a decision is {{choice: [...]}}, {{range: {{low, high}}}} "
                "or {same: name}",
            )

    def decision(self, value, path, label, parent, prefix, around) -> Any:
        marker = next(marker for marker in MARKERS if marker in value)
        if not self.keys_allowed(value, path, marker):
            return None
        if marker == "same":
            target = value["same"]
            if not isinstance(target, str):
                self.fail((*path, "same"), f"expected the name or id of a decision, got {target!r}")
                return None
            same = Same(target, path)
            self.sames.append((same, around))
            return same
        name = self.name_for(value, path, label, prefix)
        if name is None:
            return None
        self.decision_paths.add(path)
        location = self.location((*path, marker))
        if marker == "range":
            decision = self.range(value["range"], (*path, "range"), name, location, parent)
            if decision is None:
                return None
            self.decisions.append(decision)
            slot = Slot(decision)
            self.slots[name] = slot
            return slot
        return self.choice(value["choice"], path, name, location, parent, around)

    def keys_allowed(self, value: dict, path: KeyPath, marker: str) -> bool:
        allowed = _KEYS[marker]
        marker_file = self.location((*path, marker))[0]
        ok = True
        for key in value:
            if key in allowed:
                continue
            if self.location((*path, key))[0] != marker_file:
                self.dropped.add((*path, key))  # from the base spec: the decision replaces it
                continue
            hint = did_you_mean(str(key), allowed)
            self.fail(
                (*path, key),
                f"unknown key '{key}' in a {marker}{hint}; a {marker} has: {', '.join(allowed)}"
                + ("" if marker == "same" else f" (a whole layer goes inside the {marker}'s options)"),
            )
            ok = False
        return ok

    def location(self, path: KeyPath) -> Location:
        return self.source.positions.get(path) or (self.source.file, None, None)

    def name_for(self, value: dict, path: KeyPath, label: tuple[str, ...], prefix: str) -> str | None:
        given = value.get("id")
        if given is not None:
            if not isinstance(given, str) or not _ID.match(given):
                self.fail((*path, "id"), f"expected a name (letters, digits, _ . -), got {given!r}")
                return None
            if given in self.slots:
                where = self.location(self.slots[given].decision.path)
                self.fail((*path, "id"), f"id '{given}' is taken by the decision at line {where[1]}")
                return None
            return given
        name = ".".join(label)
        if prefix:
            name = f"{prefix}.{name}" if name else prefix
        if name in self.slots or not name:
            name = ".".join(str(part) for part in path) or "(top level)"
        if name in self.slots:
            self.fail(path, f"two decisions are named '{name}'; give this one an id")
            return None
        return name

    def choice(self, options, path, name, location, parent, around) -> Slot | None:
        where = (*path, "choice")
        if not isinstance(options, list) or not options:
            self.fail(where, f"expected a non-empty list of options, got {_shown(options)}")
            return None
        if len(options) > MAX_OPTIONS:
            self.fail(where, f"{len(options):,} options; at most {MAX_OPTIONS:,}")
            return None
        seen: set[Any] = set()
        for index, option in enumerate(options):
            key = (type(option), option) if is_scalar(option) else frozen(option)
            if key in seen:
                self.fail((*where, index), f"option {_shown(option)} is listed twice")
            seen.add(key)
        scalar = all(is_scalar(option) for option in options)
        labels = () if scalar else _labels(options)
        decision = Decision(name, "choice", path, location, tuple(options), labels, parent=parent)
        self.decisions.append(decision)
        slot = Slot(decision)
        self.slots[name] = slot
        for index, option in enumerate(options):
            inner = f"{name}[{labels[index]}]" if labels else f"{name}[{index}]"
            compiled = self.node(option, (*where, index), (), (name, index), inner, (*around, name))
            slot.options.append(compiled)
            slot.positions.append({})
        return slot

    def range(self, spec, path, name, location, parent) -> Decision | None:
        if not isinstance(spec, dict):
            self.fail(
                path, f"expected a mapping {{low: L, high: H, step: S, log: false}}, got {_shown(spec)}"
            )
            return None
        problems = len(self.problems)
        for key in spec:
            if key not in _RANGE_KEYS:
                hint = did_you_mean(str(key), _RANGE_KEYS)
                self.fail(
                    (*path, key), f"unknown key '{key}' in a range{hint}; a range has: low, high, step, log"
                )
        for key in ("low", "high"):
            if key not in spec:
                self.fail(path, f"missing required key '{key}'")
        numbers = {key: spec.get(key) for key in ("low", "high", "step") if spec.get(key) is not None}
        for key, number in numbers.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                self.fail((*path, key), f"expected a number, got {_shown(number)}")
            elif not abs(number) <= MAX_RANGE_NUMBER:  # nan compares False
                self.fail(
                    (*path, key), f"{_shown(number)} is out of range: a range's numbers are within ±1e18"
                )
        log = spec.get("log", False)
        if not isinstance(log, bool):
            self.fail((*path, "log"), f"expected true or false, got {_shown(log)}")
        if len(self.problems) > problems:
            return None
        kind = "float" if any(isinstance(number, float) for number in numbers.values()) else "int"
        low, high, step = spec["low"], spec["high"], spec.get("step")
        message = _range_problem(kind, low, high, step, log)
        if message:
            self.fail(path, message)
            return None
        if kind == "int":
            step = step or 1
        return Decision(
            name, kind, path[:-1], location, low=low, high=high, step=step, log=log, parent=parent
        )

    def check_sames(self) -> None:
        for same, around in self.sames:
            slot = self.slots.get(same.target)
            if slot is None:
                names = list(self.slots)
                hint = did_you_mean(same.target, names) or (
                    f"; decisions: {', '.join(names[:12])}" if names else "; the space has no decisions"
                )
                self.fail((*same.path, "same"), f"no decision named '{same.target}'{hint}")
            elif slot.decision.parent is not None:
                self.fail(
                    (*same.path, "same"),
                    f"'{same.target}' is inside an option of '{slot.decision.parent[0]}', so not every "
                    "candidate has it; same can only name a decision every candidate takes",
                )
            elif same.target in around:
                self.fail((*same.path, "same"), f"'{same.target}' is the choice this same is inside")
        self.check_cycles()

    def check_cycles(self) -> None:
        """Sames inside options that name each other round (a → b → a) would never end.

        A same inside an option of ``a`` that names ``t`` is an edge a → t; it leads back to
        itself when ``t`` reaches ``a`` again, that is when both are in one strongly connected
        component (found in linear time, not by a walk from every same)."""
        graph = nx.DiGraph()
        for same, around in self.sames:
            graph.add_edges_from((name, same.target) for name in around)
        component = {
            name: index
            for index, names in enumerate(nx.strongly_connected_components(graph))
            for name in names
        }
        for same, around in self.sames:
            target = component.get(same.target)
            if any(name != same.target and component.get(name) == target for name in around):
                self.fail((*same.path, "same"), f"'{same.target}' leads back here through other sames")

    def sort_positions(self) -> dict[KeyPath, Location]:
        """Locations every candidate has; the rest go to the option of the slot they are under."""
        static: dict[KeyPath, Location] = {}
        by_path = {slot.decision.path: slot for slot in self.slots.values()}
        for path, location in self.source.positions.items():
            if any(path[:end] in self.dropped for end in range(1, len(path) + 1)):  # under a dropped key
                continue
            owner = next((path[:end] for end in range(len(path) - 1, -1, -1) if path[:end] in by_path), None)
            if owner is None:
                static[path] = location
                continue
            rest = path[len(owner) :]
            slot = by_path[owner]
            index = rest[1] if rest[0] == "choice" and len(rest) >= 2 else None
            if isinstance(index, int) and 0 <= index < len(slot.positions):
                slot.positions[index][rest[2:]] = location
        return static


def _too_many_values(kind: str, low, high, step) -> str | None:
    """Why a discrete range holds too many values to count, probe and list, if it does."""
    if kind == "float" and step is None:
        return None  # continuous: drawn, never counted
    count = (high - low) // (step or 1) + 1 if kind == "int" else (high - low) / step + 1
    if count <= MAX_RANGE_VALUES:
        return None
    shown = f"{count:,}" if kind == "int" else f"{count:.3g}" if math.isfinite(count) else "too many"
    advice = "a larger step" + (", or no step (a continuous range)" if kind == "float" else "")
    return f"{shown} values; a range holds at most {MAX_RANGE_VALUES:,}: give it {advice}"


def _range_problem(kind: str, low, high, step, log: bool) -> str | None:
    if low > high:
        return f"low {low} is above high {high}"
    if step is not None and step <= 0:
        return f"step must be above 0, got {step}"
    if log and low <= 0:
        return f"a log range needs low above 0, got {low}"
    if log and step is not None and step != 1:
        return "log and step don't go together (as in Optuna); drop one"
    if too_many := _too_many_values(kind, low, high, step):
        return too_many
    if kind == "int" and step is not None and (high - low) % step:
        fitted = low + (high - low) // step * step
        return f"high {high} is not low {low} plus a multiple of step {step}; use high: {fitted}"
    if kind == "float" and step is not None:
        steps = (high - low) / step
        if abs(steps - round(steps)) > 1e-9:
            return f"high {high} is not low {low} plus a multiple of step {step}"
    return None
