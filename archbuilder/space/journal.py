"""Optuna's journal storage (one append-only file) with the heartbeat its RDB storage has.

Optuna's ``JournalStorage`` keeps no heartbeat, so a worker killed mid-trial leaves its trial
RUNNING for ever. Here each running trial records the time in a system attribute every
``heartbeat_interval`` seconds; a RUNNING trial whose last beat is older than the grace
period is stale, and Optuna's own ``fail_stale_trials`` (run before each trial) fails it and
calls the retry callback. The workers' clocks are compared: keep them in sync (NTP) when
the file is shared between machines.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

__all__ = ["HeartbeatJournalStorage", "heartbeat_journal"]

BEAT = "archbuilder:heartbeat:{}"  # per trial id: a retried copy of a trial starts without one

Callback = Callable[["optuna.Study", FrozenTrial], None]


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A ``JournalStorage`` whose running trials beat (see the module's docstring)."""

    def __init__(self, backend: Any, interval: int | None, grace: int | None, callback: Callback | None):
        super().__init__(backend)
        self._interval = interval
        self._grace = grace if grace is not None else (2 * interval if interval else None)
        self._callback = callback

    def record_heartbeat(self, trial_id: int) -> None:
        # A trial another worker declared stale is finished: its retry runs elsewhere.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, BEAT.format(trial_id), time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now, stale = time.time(), []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(BEAT.format(trial._trial_id))
            if beat is not None and self._grace is not None and now - beat > self._grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callback | None:
        return self._callback

    def get_failed_trial_callback(self) -> Callback | None:  # optuna < 4.9 asks by this name
        return self._callback


def heartbeat_journal(
    path: str, interval: int | None, grace: int | None, callback: Callback | None
) -> HeartbeatJournalStorage:
    """The journal in file ``path`` (made when missing), with a heartbeat when ``interval`` is set."""
    journal = optuna.storages.journal
    backend_class = getattr(journal, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
    return HeartbeatJournalStorage(backend_class(path), interval, grace, callback)
