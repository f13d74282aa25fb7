"""archbuilder.space.quota against Optuna's own retry callback: the race that left a study
one trial short (a worker looked between a stale trial's failure and its copy's queueing)."""

from __future__ import annotations

import pytest

from archbuilder.space.quota import ERROR, REJECTED, is_over_quota, slot, taken_slots
from archbuilder.space.study import open_storage

optuna = pytest.importorskip("optuna")
FAIL, WAITING = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING
QUOTA, RETRIES = 8, 2
# The trials are asked and told by hand here, as Study.optimize does under the heartbeat.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning")


@pytest.fixture
def study(tmp_path):
    """A study on the storage examples/search_digits.py opens, with its retry callback."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(
        f"journal:{tmp_path / 'study.log'}", heartbeat_interval=1, grace_period=2, max_retry=RETRIES
    )
    return optuna.create_study(storage=storage, direction="maximize")


def fail_silently(study, number: int) -> optuna.trial.FrozenTrial:
    """What optuna.storages.fail_stale_trials does first: the stale trial is failed (its copy
    is queued after, by the retry callback)."""
    trial = study.get_trials(deepcopy=False)[number]
    study._storage.set_trial_state_values(trial._trial_id, state=FAIL)
    return study.get_trials()[number]


def retry(study, failed: optuna.trial.FrozenTrial) -> list[optuna.trial.FrozenTrial]:
    """Optuna's retry callback, as the storage calls it; the trials it queued."""
    before = len(study.trials)
    study._storage.get_heartbeat_stale_trial_callback()(study, failed)
    return study.get_trials()[before:]


def trial(study, number: int) -> optuna.trial.FrozenTrial:
    return study.get_trials()[number]


def test_a_stale_trial_keeps_its_slot_until_its_copy_comes_and_the_copy_runs(study):
    study.ask()  # trial 0: its worker is killed, so it stays RUNNING
    for _ in range(1, QUOTA):
        study.tell(study.ask(), 1.0)  # trials 1-7 finish
    study.ask()  # trial 8, asked as trial 0 goes stale: over the quota while 0 holds its slot
    assert is_over_quota(trial(study, 8), study.trials, QUOTA, RETRIES)

    dead = fail_silently(study, 0)
    # Between the failure and the copy: the slot is still taken, so trial 8 is still over
    # (counting the trials that did not fail, 1-7, would let it run, and the copy after it
    # would then be over the quota: the study one short).
    assert 0 in taken_slots(study.trials, RETRIES)
    assert is_over_quota(trial(study, 8), study.trials, QUOTA, RETRIES)

    (copy,) = retry(study, dead)
    assert copy.state == WAITING and slot(copy) == 0 and copy.params == dead.params
    assert not is_over_quota(copy, study.trials, QUOTA, RETRIES)
    assert is_over_quota(trial(study, 8), study.trials, QUOTA, RETRIES)


def test_a_slot_is_free_once_its_retries_are_spent(study):
    study.ask()  # trial 0
    dead = fail_silently(study, 0)
    for copies in range(1, RETRIES + 1):  # each copy dies too
        assert 0 in taken_slots(study.trials, RETRIES)  # another copy is still to come
        (copy,) = retry(study, dead)
        study._storage.set_trial_state_values(copy._trial_id, state=optuna.trial.TrialState.RUNNING)
        dead = fail_silently(study, copy.number)
        assert slot(dead) == 0 and len(study.trials) == 1 + copies
    assert retry(study, dead) == []  # Optuna's callback stops where the quota stops waiting
    assert taken_slots(study.trials, RETRIES) == set()


@pytest.mark.parametrize("mark", [REJECTED, ERROR])
def test_a_trial_failed_loudly_frees_its_slot(study, mark):
    ask = study.ask()
    ask.set_user_attr(mark, "over --total 8" if mark == REJECTED else "RuntimeError")
    study.tell(ask, state=FAIL)
    assert taken_slots(study.trials, RETRIES) == set()


def test_without_retries_a_failed_trial_frees_its_slot_at_once(study):
    study.ask()
    fail_silently(study, 0)
    assert taken_slots(study.trials, 0) == set()
    study.ask()
    assert not is_over_quota(trial(study, 1), study.trials, 1, 0)
