"""A space's decisions as a tree: draw picks at random, or list every combination in order.

A random draw is uniform over the space's raw combinations: a choice takes an option with
probability proportional to how many combinations lie under it (a log range is drawn
log-uniformly instead, as Optuna does). Rejecting the invalid ones then leaves a uniform
sample of the valid candidates. A draw costs the number of decisions it makes, whatever
the size of the space.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterable, Iterator
from typing import Any

from archbuilder.core.errors import Problem, SpecError, did_you_mean
from archbuilder.space.decisions import Decision
from archbuilder.space.resolve import Picks

__all__ = ["DecisionTree", "size_text"]


def size_text(size: int | float) -> str:
    """A count of combinations for people: ``1,234`` exactly up to 10^15, then ``~10^480``
    (no float overflow, no line of 10,000 digits); a continuous range's is unbounded."""
    if isinstance(size, float):
        return "unbounded (a continuous range)"
    if size < 10**15:
        return f"{size:,}"
    return f"~10^{round(int(size).bit_length() * math.log10(2))}"


class DecisionTree:
    """The decisions of a space, with those under each choice's options."""

    def __init__(self, decisions: tuple[Decision, ...]):
        self.decisions = decisions
        self.by_name = {decision.name: decision for decision in decisions}
        self.roots = [decision for decision in decisions if decision.parent is None]
        self.children: dict[tuple[str, int], list[Decision]] = {}
        for decision in decisions:
            if decision.parent is not None:
                self.children.setdefault(decision.parent, []).append(decision)
        self.sizes: dict[str, int | float] = {}
        self.weights: dict[str, list[int | float]] = {}
        self._cumulative: dict[str, list[int]] = {}  # running sums of a choice's integer weights
        for decision in reversed(decisions):  # children come after their choice
            if decision.kind == "choice":
                weights = [
                    self._size(self.children.get((decision.name, i), [])) for i in range(decision.count)
                ]
                self.weights[decision.name] = weights
                self.sizes[decision.name] = sum(weights)
                if all(isinstance(weight, int) for weight in weights):
                    self._cumulative[decision.name] = list(itertools.accumulate(weights))
            else:
                self.sizes[decision.name] = decision.count
        self.size = self._size(self.roots)

    def _size(self, decisions: list[Decision]) -> int | float:
        return math.prod(self.sizes[decision.name] for decision in decisions)

    # -- drawing --------------------------------------------------------------
    def draw(self, rng: random.Random, forced: Picks | None = None) -> Picks:
        """One pick per active decision, in document order (``forced`` picks kept)."""
        picks: Picks = {}
        stack = list(reversed(self.roots))
        while stack:
            decision = stack.pop()
            if forced and decision.name in forced:
                pick = forced[decision.name]
            else:
                pick = self._draw_one(rng, decision)
            picks[decision.name] = pick
            if decision.kind == "choice":
                stack.extend(reversed(self.children.get((decision.name, pick), [])))
        return picks

    def _draw_one(self, rng: random.Random, decision: Decision) -> Any:
        if decision.kind == "choice":
            cumulative = self._cumulative.get(decision.name)
            if not cumulative or cumulative[-1] <= 0:  # a continuous range below: options alike
                return rng.randrange(decision.count)
            return bisect.bisect_right(cumulative, rng.randrange(cumulative[-1]))
        if decision.log:
            low, high = (
                (decision.low - 0.5, decision.high + 0.5)
                if decision.kind == "int"
                else (decision.low, decision.high)
            )
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
            if decision.kind == "int":
                return min(decision.high, max(decision.low, round(value)))
            return min(decision.high, max(decision.low, value))
        if decision.step is None:
            return rng.uniform(decision.low, decision.high)
        return decision.value(rng.randrange(decision.count))

    # -- listing --------------------------------------------------------------
    def domain(self, decision: Decision) -> Iterable[Any]:
        """The picks of ``decision`` in order, lazily (a range may hold 10^12 values)."""
        if decision.kind == "choice":
            return range(decision.count)
        if math.isinf(decision.count):
            message = (
                f"decision '{decision.name}' is a continuous range ({decision.describe()}): its values "
                "cannot be listed; give it a step, or sample() the space"
            )
            raise SpecError([Problem(decision.path, message, *decision.location)])
        return map(decision.value, range(decision.count))

    def check_listable(self) -> None:
        """SpecError when a decision is a continuous range (its values have no list)."""
        for decision in self.decisions:
            self.domain(decision)

    def combinations(self) -> Iterator[Picks]:
        """Every combination of picks, lazily, the last decision changing fastest."""
        if not self.roots:
            yield {}
            return
        picks: Picks = {}
        first = tuple(self.roots)
        stack: list[tuple[tuple[Decision, ...], Iterator[Any]]] = [(first, iter(self.domain(first[0])))]
        while stack:
            pending, values = stack[-1]
            decision = pending[0]
            pick = next(values, _END)
            if pick is _END:
                stack.pop()
                picks.pop(decision.name, None)
                continue
            picks[decision.name] = pick
            children = self.children.get((decision.name, pick), []) if decision.kind == "choice" else []
            rest = (*children, *pending[1:])
            if rest:
                stack.append((rest, iter(self.domain(rest[0]))))
            else:
                yield dict(picks)

    # -- names and values -----------------------------------------------------
    def public(self, picks: Picks) -> dict[str, Any]:
        """Picks as users see them: option values (or labels) and range values."""
        return {name: self.by_name[name].public(pick) for name, pick in picks.items()}

    def picks_for(self, choices: dict[str, Any]) -> Picks:
        """The picks of explicit ``choices`` (decision name → value); SpecError when they don't fit."""
        problems, picks = [], {}
        stack = list(reversed(self.roots))
        while stack:
            decision = stack.pop()
            if decision.name not in choices:
                problems.append(
                    _at(decision, f"no value given for decision '{decision.name}' ({decision.describe()})")
                )
                continue
            value = choices[decision.name]
            pick = decision.index_of(value) if decision.kind == "choice" else value
            if decision.kind == "int" and decision.contains(value):
                pick = int(value)  # 16.0 for an integer range is 16
            if pick is None or (decision.kind != "choice" and not decision.contains(value)):
                problems.append(
                    _at(decision, f"{value!r} is not a value of '{decision.name}': {decision.describe()}")
                )
                continue
            picks[decision.name] = pick
            if decision.kind == "choice":
                stack.extend(reversed(self.children.get((decision.name, pick), [])))
        for name in choices:
            if name not in picks and name not in self.by_name:
                hint = _hint(name, list(self.by_name))
                problems.append(Problem((), f"no decision named '{name}'{hint}"))
            elif name not in picks and self.by_name[name].parent and not problems:
                parent, index = self.by_name[name].parent
                option = self.by_name[parent].public(index)
                problems.append(_at(self.by_name[name], f"'{name}' is only taken with {parent} = {option!r}"))
        if problems:
            raise SpecError(problems)
        return picks


_END = object()


def _at(decision: Decision, message: str) -> Problem:
    return Problem(decision.path, message, *decision.location)


def _hint(name: str, names: list[str]) -> str:
    return did_you_mean(name, names) or (
        f"; decisions: {', '.join(names[:12])}" if names else "; the space has none"
    )
