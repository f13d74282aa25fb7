"""Probe every option of a space: which ones some valid candidate takes, and why the others fail.

Each option is tried in a few random candidates (the other decisions drawn at random); any
valid candidate proves every option it took. A space with no valid candidate at all is an
error that says, for each decision, why each of its options failed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archbuilder.core.errors import Problem, SpecError
from archbuilder.space.budget import MAX_PROBES, PROBE_BUDGET, check_count
from archbuilder.space.decisions import Decision
from archbuilder.space.evaluate import Candidate
from archbuilder.space.resolve import Picks
from archbuilder.space.tree import DecisionTree

__all__ = ["OptionReport", "empty_space_error", "probe_options"]

RANGE_PROBES = 5  # values of a range tried: both ends and evenly between


@dataclass(frozen=True)
class OptionReport:
    """One option of one decision: whether a valid candidate takes it, else its first problem."""

    decision: Decision
    option: Any
    """The option as users name it (a value, or a label for a layer)."""
    valid: bool
    problem: Problem | None
    tries: int = 0
    """Random candidates judged with this option until one was valid or the tries ran out;
    0 when a candidate judged for another option proved it, or when the probe budget was
    spent before its turn (then ``valid`` is False and ``problem`` None)."""


def _probe_values(decision: Decision) -> list[Any]:
    if decision.kind == "choice":
        return list(range(decision.count))
    if decision.step is None and decision.kind == "float":
        return [
            decision.low + (decision.high - decision.low) * i / (RANGE_PROBES - 1)
            for i in range(RANGE_PROBES)
        ]
    count = int(decision.count)
    indices = sorted({round(i * (count - 1) / (RANGE_PROBES - 1)) for i in range(RANGE_PROBES)})
    return [decision.value(index) for index in indices]


def _path_to(tree: DecisionTree, decision: Decision) -> Picks:
    """The picks of the choices whose options hold ``decision``."""
    forced: Picks = {}
    while decision.parent is not None:
        name, index = decision.parent
        forced[name] = index
        decision = tree.by_name[name]
    return forced


def probe_options(
    tree: DecisionTree, judge: Callable[[Picks], Candidate], *, probes: int = 3, seed: int = 0
) -> list[OptionReport]:
    """A report per option (per probed value of a range), in document order.

    At most :data:`PROBE_BUDGET` candidates are judged in all: with more options than
    ``PROBE_BUDGET / probes``, each option is tried fewer times (once at least), and the
    options past the budget not at all (their reports say 0 tries)."""
    check_count("probes", probes, MAX_PROBES)
    rng = random.Random(seed)
    options = [(decision, pick) for decision in tree.decisions for pick in _probe_values(decision)]
    per_option = max(1, min(probes, PROBE_BUDGET // max(1, len(options))))
    budget = PROBE_BUDGET
    proven: set[tuple[str, Any]] = set()
    problems: dict[tuple[str, Any], Problem] = {}
    tries: dict[tuple[str, Any], int] = {}
    for decision, pick in options:
        key = (decision.name, pick)
        forced = {**_path_to(tree, decision), decision.name: pick}
        while key not in proven and tries.get(key, 0) < per_option and budget > 0:
            picks = tree.draw(rng, forced)
            candidate = judge(picks)
            tries[key] = tries.get(key, 0) + 1
            budget -= 1
            if candidate.valid:
                proven.update(picks.items())
            else:
                problems.setdefault(key, candidate.problems[0])
    return [
        OptionReport(
            decision,
            decision.public(pick),
            (decision.name, pick) in proven,
            None if (decision.name, pick) in proven else problems.get((decision.name, pick)),
            tries.get((decision.name, pick), 0),
        )
        for decision, pick in options
    ]


def empty_space_error(reports: list[OptionReport], file: str | None, draws: int) -> SpecError:
    """Why no candidate is valid: a problem shared by every option once, and for each decision
    whose options fail differently, each option's reason."""
    header = Problem(
        (), f"no valid candidate in this space ({draws} random ones tried, and every option probed)", file
    )
    found: list[Problem] = [header]
    seen: set[tuple] = set()
    by_decision: dict[str, list[OptionReport]] = {}
    for report in reports:
        by_decision.setdefault(report.decision.name, []).append(report)
    for options in by_decision.values():
        kinds = {(r.problem.path, r.problem.message) for r in options if r.problem}
        if len(kinds) <= 1:
            for report in options[:1]:
                key = (report.problem.path, report.problem.message) if report.problem else None
                if report.problem and key not in seen:
                    seen.add(key)
                    found.append(report.problem)
            continue
        decision = options[0].decision
        reasons = "; ".join(f"{_shown(r.option)} → {r.problem}" for r in options if r.problem)
        message = f"no option of '{decision.name}' gives a valid candidate: {reasons}"
        found.append(Problem(decision.path, message, *decision.location))
    return SpecError(found)


def _shown(option: Any) -> str:
    return "null" if option is None else str(option)
