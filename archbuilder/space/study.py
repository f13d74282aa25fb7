"""A shared Optuna study of one space: what identifies the space, and the storage workers meet in.

Workers on many machines join one study by name. :func:`space_identity` says what space a
worker searches (the space's ``name``, the SHA-256 of its file, of each file its ``extends``
chain reads, and the ``--set`` overrides); :func:`join_study` records it in a new study and
refuses, with :class:`StudyMismatch` naming what differs, a study made from anything else.
:func:`open_storage` opens an Optuna RDB URL or a journal file (``journal:PATH``) with a
heartbeat: a worker that dies mid-trial stops beating, and after the grace period the next
worker to look marks its trial failed and queues it again (Optuna's retry callback).
Optuna is imported only when a storage is opened or a study joined.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from typing import Any

from archbuilder.core.extras import require
from archbuilder.spec.compose import Overrides, base_path
from archbuilder.spec.source import parse_yaml

__all__ = [
    "IDENTITY_ATTR",
    "StudyMismatch",
    "identity_differences",
    "join_study",
    "open_storage",
    "space_identity",
]

IDENTITY_ATTR = "space_identity"  # the study's user attribute holding the identity
LEGACY_ATTR = "space_sha256"  # what studies recorded before: the space file's hash alone
JOURNAL = "journal:"  # --storage journal:PATH, a journal file (a shared file system, no server)
NEEDED_FOR = "a shared search study"


class StudyMismatch(ValueError):
    """A study was made from another space (file, version, ``extends`` base or overrides)."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def space_identity(text: str, file: str | None, name: Any, overrides: Overrides | None) -> dict[str, Any]:
    """What a study records of the space it searches: plain data, the same on every machine
    (no paths: files are named by ``extends`` as written)."""
    chain, data, current = [], parse_yaml(text, file)[0], file
    while isinstance(data, dict) and isinstance(data.get("extends"), str) and len(chain) < 32:
        base = base_path(data["extends"], current, (current, None, None))
        base_text = base.read_text(encoding="utf-8")
        chain.append({"extends": data["extends"], "sha256": _sha256(base_text)})
        data, current = parse_yaml(base_text, str(base))[0], str(base)
    if isinstance(overrides, Mapping):
        sets = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    else:
        sets = [str(item) for item in overrides or ()]
    return {"space": name, "space_sha256": _sha256(text), "extends": chain, "overrides": sets}


def identity_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between a study's recorded identity and this worker's, in words."""
    found = []
    if recorded.get("space") != current.get("space"):
        found.append(f"another space ('{recorded.get('space')}' in the study, '{current.get('space')}' here)")
    elif recorded.get("space_sha256") != current.get("space_sha256"):
        found.append(
            f"another version of the space file '{current.get('space')}' (sha256 "
            f"{str(recorded.get('space_sha256'))[:12]}... in the study, {str(current.get('space_sha256'))[:12]}... here)"
        )
    if "extends" in recorded:
        theirs, ours = recorded["extends"], current.get("extends", [])
        names = [link["extends"] for link in theirs], [link["extends"] for link in ours]
        if names[0] != names[1]:
            found.append(f"another extends base ({_chain(names[0])} in the study, {_chain(names[1])} here)")
        else:
            for before, now in zip(theirs, ours):
                if before["sha256"] != now["sha256"]:
                    found.append(
                        f"another version of the extends base '{now['extends']}' (sha256 "
                        f"{before['sha256'][:12]}... in the study, {now['sha256'][:12]}... here)"
                    )
    if "overrides" in recorded and list(recorded["overrides"]) != list(current.get("overrides", [])):
        found.append(f"other --set overrides ({_sets(recorded['overrides'])} in the study, {_sets(current.get('overrides', []))} here)")  # fmt: skip
    return found


def _chain(names: list[str]) -> str:
    return " → ".join(f"'{name}'" for name in names) if names else "none"


def _sets(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def join_study(study: Any, identity: Mapping[str, Any]) -> None:
    """Record ``identity`` in a study that has none; StudyMismatch, naming each difference,
    when the study was made from another space."""
    attrs = study.user_attrs
    if IDENTITY_ATTR in attrs:
        found = identity_differences(attrs[IDENTITY_ATTR], identity)
    elif LEGACY_ATTR in attrs:  # a study from before identities: the file's hash alone
        found = identity_differences(
            {"space": identity["space"], "space_sha256": attrs[LEGACY_ATTR]}, identity
        )
    else:
        study.set_user_attr(IDENTITY_ATTR, dict(identity))
        study.set_user_attr(LEGACY_ATTR, identity["space_sha256"])
        return
    if found:
        raise StudyMismatch(
            f"study '{study.study_name}' searches another space: {'; '.join(found)}; "
            "join it with the same space file, or start a new study (another study name)"
        )


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
    engine_kwargs: dict[str, Any] | None = None,
) -> Any:
    """An Optuna storage: an RDB URL (``sqlite:///x.db``, ``postgresql+psycopg://...``) or
    ``journal:PATH`` (Optuna's journal in a file).

    With ``heartbeat_interval`` (seconds) each running trial records a heartbeat; one silent
    for ``grace_period`` (default twice the interval) is marked failed by the next worker to
    look and, with ``max_retry`` (None: no retries), queued again with the same parameters.
    """
    optuna = require("optuna", needed_for=NEEDED_FOR)
    if url.startswith("postgresql+psycopg:"):
        require("psycopg", needed_for="a study on PostgreSQL")
    retry = None
    if heartbeat_interval is not None and max_retry is not None:
        callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # optuna >= 4.9
        with warnings.catch_warnings():  # experimental since Optuna 2.8, and stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = (callback or optuna.storages.RetryFailedTrialCallback)(max_retry=max_retry)
    if url.startswith(JOURNAL):
        from archbuilder.space.journal import heartbeat_journal

        return heartbeat_journal(url[len(JOURNAL) :], heartbeat_interval, grace_period, retry)
    options: dict[str, Any] = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
    if retry is not None:
        keyword = "heartbeat_stale_trial_callback"
        if not hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
            keyword = "failed_trial_callback"  # optuna < 4.9
        options[keyword] = retry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval's
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **options)
