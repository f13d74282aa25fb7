"""A study that ends with exactly N finished trials, whichever workers run them.

Each trial holds a *slot*: its own number, or, for a copy Optuna's retry callback queued
after a worker died, the number of the trial it runs again. The first N slots taken are the
study's; a trial asked past them (two workers asked at once) is over the quota and fails at
once, untrained.

A slot stays taken while any of its trials has not failed, and while its newest trial failed
silently (heartbeat) with a retry still to come: Optuna marks a stale trial failed and only
then queues its copy, and a worker that looks between the two must not give the slot away,
or the copy, when it comes, finds the quota full and the study ends one trial short of it.
A trial is failed loudly, freeing its slot, when it is over the quota (:data:`REJECTED`) or
its worker raised (:data:`ERROR`); it is then never run again.

These functions read :class:`optuna.trial.FrozenTrial` lists and write nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["ERROR", "REJECTED", "is_over_quota", "slot", "taken_slots"]

REJECTED = "rejected"  # user attribute of a trial failed as over the quota
ERROR = "error"  # user attribute of a trial whose worker raised


def slot(trial: Any) -> int:
    """The quota slot ``trial`` holds: the number of the trial it runs again, or its own."""
    return int(trial.system_attrs.get("failed_trial", trial.number))


def _retry_to_come(trial: Any, retries: int) -> bool:
    """Whether Optuna's retry callback queues a copy of this failed trial (or is about to)."""
    if REJECTED in trial.user_attrs or ERROR in trial.user_attrs:
        return False
    # The callback's history is this trial's plus its number; it stops past ``retries``.
    return len(trial.system_attrs.get("retry_history", ())) < retries


def taken_slots(trials: Iterable[Any], retries: int) -> set[int]:
    """The slots the study's trials hold, with ``retries`` runs again of a silent trial."""
    from optuna.trial import TrialState

    held, newest = set(), {}
    for trial in trials:
        if trial.state != TrialState.FAIL:
            held.add(slot(trial))
        elif trial.number > getattr(newest.get(slot(trial)), "number", -1):
            newest[slot(trial)] = trial
    held.update(number for number, trial in newest.items() if _retry_to_come(trial, retries))
    return held


def is_over_quota(trial: Any, trials: Iterable[Any], quota: int, retries: int) -> bool:
    """Whether ``trial`` would pass the quota: ``quota`` slots before its own are taken."""
    own = slot(trial)
    others = [other for other in trials if other.number != trial.number]
    return sum(number < own for number in taken_slots(others, retries)) >= quota
