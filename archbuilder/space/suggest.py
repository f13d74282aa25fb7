"""Optuna glue: each decision of a space asked of a trial, define-by-run.

A choice is ``trial.suggest_categorical`` (its options, or their labels when they are
layers), an integer range ``trial.suggest_int``, a float range ``trial.suggest_float``;
the decisions inside an option are asked only when the option is taken. A candidate that
is invalid or over a budget raises ``optuna.TrialPruned`` before anything is built.
Optuna is imported only here, and only when a trial is asked; without it, :func:`suggest`
raises MissingExtra naming the ``search`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archbuilder.core.extras import require
from archbuilder.space.decisions import Decision
from archbuilder.space.evaluate import Candidate
from archbuilder.space.resolve import Picks
from archbuilder.space.tree import DecisionTree
from archbuilder.spec.model import ArchSpec

__all__ = ["ask", "suggest"]


def ask(trial: Any, decision: Decision) -> Any:
    """The trial's pick for one decision (an option index for a choice)."""
    if decision.kind == "choice":
        keys = list(decision.options if decision.scalar else decision.labels)
        return decision.index_of(trial.suggest_categorical(decision.name, keys))
    if decision.kind == "int":
        return trial.suggest_int(
            decision.name, decision.low, decision.high, step=decision.step, log=decision.log
        )
    return trial.suggest_float(
        decision.name, decision.low, decision.high, step=decision.step, log=decision.log
    )


def suggest(tree: DecisionTree, judge: Callable[[Picks], Candidate], trial: Any) -> ArchSpec:
    """The spec of the candidate ``trial`` picks; its ``params``, ``macs`` (and
    ``activation_bytes``) become user attributes. Raises ``optuna.TrialPruned`` when the
    candidate is invalid, with the reason also kept as the user attribute ``rejected``.
    MissingExtra (an ImportError) where optuna is not installed."""
    optuna = require("optuna", needed_for="SearchSpace.suggest")  # before the trial is asked anything
    picks: Picks = {}
    stack = list(reversed(tree.roots))
    while stack:
        decision = stack.pop()
        picks[decision.name] = pick = ask(trial, decision)
        if decision.kind == "choice":
            stack.extend(reversed(tree.children.get((decision.name, pick), [])))
    candidate = judge(picks)
    for key in ("params", "macs", "activation_bytes"):
        if getattr(candidate, key) is not None:
            trial.set_user_attr(key, getattr(candidate, key))
    if not candidate.valid:
        trial.set_user_attr("rejected", candidate.reason)
        raise optuna.TrialPruned(f"invalid candidate ({candidate.stage}): {candidate.reason}")
    return candidate.spec
