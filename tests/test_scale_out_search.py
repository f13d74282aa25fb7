"""examples/search_digits.py scaled out: four workers on a real PostgreSQL server (and on a
journal file), one SIGKILLed in the middle of a trial; studies that must not be mixed up."""

from __future__ import annotations

import collections
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import archbuilder
from archbuilder.space.output import read_header
from archbuilder.space.study import StudyMismatch, join_study

from .conftest import ROOT
from .postgres import postgres_server
from .processes import Watched, one_thread_env

optuna = pytest.importorskip("optuna")
pytest.importorskip("sklearn")

SCRIPT = ROOT / "examples" / "search_digits.py"
SPACE = ROOT / "specs" / "spaces" / "inception-digits.yaml"
TINY = ["--epochs", "1", "--set", "scale.width=0.25", "--threads", "1"]
TOTAL, WORKERS = 8, 4
# A beat a second; a trial silent for 12 s is its worker's death (a live one on a loaded
# 2-core machine beats late by a few seconds at most).
HEARTBEAT = ["--heartbeat", "1", "--grace", "12", "--retries", "2"]
STATES = optuna.trial.TrialState
WORKER_SECONDS = 300  # each worker process, at most


@pytest.fixture(scope="module")
def server():
    with postgres_server() as running:
        yield running


def kill_one_worker_mid_trial(storage: str, cwd: Path) -> tuple[optuna.Study, int, list[str], float]:
    """Four workers on ``storage``, the first SIGKILLed while it trains a trial; the study, that
    trial's number, the workers' outputs and the wall time once the last worker ended."""
    start = time.perf_counter()
    command = [sys.executable, str(SCRIPT), "--storage", storage, "--study", "digits", *TINY, *HEARTBEAT]
    command += ["--total", str(TOTAL), "--trials", str(TOTAL), "--no-report"]
    workers = [Watched([*command, "--seed", str(seed)], cwd) for seed in range(WORKERS)]
    try:
        victim = workers[0]
        killed = int(victim.wait_for(r"trial (\d+) started", WORKER_SECONDS)[1])
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=30)
        study = optuna.load_study(study_name="digits", storage=open_plain(storage))
        # Killed mid-trial: the trial is still RUNNING in the storage, and will stay so until
        # another worker finds its heartbeat stopped.
        assert study.get_trials(deepcopy=False)[killed].state == STATES.RUNNING
        outputs = [victim.finish(WORKER_SECONDS)]
        for worker in workers[1:]:
            out = worker.finish(WORKER_SECONDS)
            assert worker.process.returncode == 0, out
            outputs.append(out)
        return study, killed, outputs, time.perf_counter() - start
    finally:
        for worker in workers:
            worker.stop()


def open_plain(storage: str):
    """The study's storage as a reader opens it (no heartbeat: it runs no trials)."""
    from archbuilder.space.study import open_storage

    return open_storage(storage)


def check_the_study(study: optuna.Study, killed: int, outputs: list[str], storage: str, cwd: Path) -> dict:
    """Everything the issue asks of a study whose worker died; the counts, for the log."""
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # no number twice, none skipped
    complete = [t for t in trials if t.state == STATES.COMPLETE]
    failed = [t for t in trials if t.state == STATES.FAIL]
    assert not [t for t in trials if t.state in (STATES.RUNNING, STATES.WAITING, STATES.PRUNED)]
    # Width 0.25 keeps every candidate under the budget (checked below), so none is pruned
    # and every one of the TOTAL trials asked for completes.
    assert len(complete) == TOTAL

    # The killed trial failed (heartbeat), and ran again once, with its decisions, to completion.
    dead = trials[killed]
    assert dead.state == STATES.FAIL and "rejected" not in dead.user_attrs
    reruns = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert [t.state for t in reruns] == [STATES.COMPLETE] and reruns[0].params == dead.params
    # Every other failure is a trial asked past --total by two workers at once, never trained.
    assert all(t.user_attrs.get("rejected") == f"over --total {TOTAL}" for t in failed if t is not dead)
    # No trial counted twice: each completed trial was reported by exactly one worker, and
    # no failed trial's decisions completed more than once.
    reported = collections.Counter(
        int(n) for out in outputs for n in re.findall(r"^trial (\d+): accuracy", out, re.MULTILINE)
    )
    assert reported == collections.Counter(t.number for t in complete)
    origins = collections.Counter(
        t.system_attrs["failed_trial"] for t in complete if "failed_trial" in t.system_attrs
    )
    assert all(count == 1 for count in origins.values())

    # Every trial's decisions rebuild a valid spec whose MACs are the ones the trial recorded.
    space = archbuilder.load_space(SPACE, overrides=["scale.width=0.25"])
    for trial in complete:
        spec = space.candidate(trial.params)
        assert archbuilder.summarize(spec).inference_macs == trial.values[1]

    # --report reads the front from the storage alone.
    report = subprocess.run(
        [sys.executable, str(SCRIPT), "--storage", storage, "--study", "digits", *TINY, "--report", "--out", "r"],
        cwd=cwd, capture_output=True, text=True, timeout=WORKER_SECONDS, env=one_thread_env(),
    )  # fmt: skip
    assert report.returncode == 0, report.stdout + report.stderr
    first = (cwd / "r" / "front.md").read_text().splitlines()[0]
    assert f"{len(trials)} trials, {TOTAL} complete, 0 pruned" in first
    assert f"{len(failed)} failed, {len(reruns)} run again" in first
    front = sorted((cwd / "r").glob("front-trial*.yaml"))
    assert len(front) == len(study.best_trials) > 0
    for path in front:
        trial = trials[int(path.stem.removeprefix("front-trial"))]
        assert read_header(path.read_text())["decisions"] == trial.params
        assert archbuilder.summarize(archbuilder.load_spec(path)).inference_macs == trial.values[1]
    return {"asked": TOTAL, "complete": len(complete), "failed": len(failed), "retried": len(reruns)}


def test_width_one_quarter_keeps_every_candidate_in_the_budget():
    """The premise of 'every trial completes': no candidate of the tests' space is pruned."""
    space = archbuilder.load_space(SPACE, overrides=["scale.width=0.25"])
    assert all(candidate.valid for candidate in space.enumerate(include_invalid=True))


@pytest.mark.slow
def test_four_workers_on_postgresql_survive_one_killed_mid_trial(server, tmp_path, capsys):
    storage = server.createdb("killed")
    study, killed, outputs, seconds = kill_one_worker_mid_trial(storage, tmp_path)
    counts = check_the_study(study, killed, outputs, storage, tmp_path)
    with capsys.disabled():
        print(f"\nPostgreSQL, {WORKERS} workers, one killed: {json.dumps(counts)}, {seconds:.1f} s")


@pytest.mark.slow
def test_four_workers_on_a_journal_file_survive_one_killed_mid_trial(tmp_path, capsys):
    storage = f"journal:{tmp_path / 'digits.log'}"
    study, killed, outputs, seconds = kill_one_worker_mid_trial(storage, tmp_path)
    counts = check_the_study(study, killed, outputs, storage, tmp_path)
    with capsys.disabled():
        print(f"\njournal file, {WORKERS} workers, one killed: {json.dumps(counts)}, {seconds:.1f} s")


def write_space(
    folder: Path, *, base: str, edit: tuple[str, str] | None = None, name: str = "space.yaml"
) -> Path:
    """The shipped space, extending ``base`` (a file in ``folder``), with one text edit."""
    text = SPACE.read_text().replace("extends: inception-digits", f"extends: {base}")
    if edit:
        assert edit[0] in text
        text = text.replace(*edit)
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_a_study_refuses_another_space_base_version_or_overrides(server, tmp_path):
    shutil.copy(ROOT / "specs" / "inception-digits.yaml", tmp_path / "base.yaml")
    shutil.copy(ROOT / "specs" / "inception-digits.yaml", tmp_path / "other-base.yaml")
    original = write_space(tmp_path, base="base.yaml")
    storage = server.createdb("mixups")
    study = optuna.create_study(storage=storage, study_name="digits", directions=["maximize", "minimize"])
    join_study(study, archbuilder.load_space(original).identity)  # the study's creator
    join_study(study, archbuilder.load_space(original).identity)  # the same space joins

    def refusal(space_file: Path, overrides: list[str] | None = None) -> str:
        joined = optuna.load_study(study_name="digits", storage=storage)  # as another worker would
        with pytest.raises(StudyMismatch) as error:
            join_study(joined, archbuilder.load_space(space_file, overrides=overrides).identity)
        return str(error.value)

    renamed = write_space(tmp_path, base="base.yaml", edit=("name: inception-digits-search", "name: other"), name="b.yaml")  # fmt: skip
    assert "another space ('inception-digits-search' in the study, 'other' here)" in refusal(renamed)

    rebased = write_space(tmp_path, base="other-base.yaml", name="c.yaml")
    message = refusal(rebased)
    assert "another extends base ('base.yaml' in the study, 'other-base.yaml' here)" in message

    edited = write_space(tmp_path, base="base.yaml", edit=("kernel_5x5: {choice: [3, 5]}", "kernel_5x5: {choice: [3]}"), name="d.yaml")  # fmt: skip
    message = refusal(edited)
    assert "another version of the space file 'inception-digits-search'" in message
    assert "extends" not in message and "--set" not in message  # only what differs is named

    assert "other --set overrides (none in the study, scale.width=0.5 here)" in refusal(
        original, ["scale.width=0.5"]
    )

    base = tmp_path / "base.yaml"
    base.write_text(base.read_text().replace("num_classes: 10", "num_classes: 10  # edited"))
    message = refusal(original)
    assert "another version of the extends base 'base.yaml'" in message
    assert "version of the space file" not in message

    # The command line: one line naming the difference, no traceback.
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--storage", storage, "--study", "digits", "--space", str(edited), "--trials", "1", "--no-report"],
        cwd=tmp_path, capture_output=True, text=True, timeout=WORKER_SECONDS, env=one_thread_env(),
    )  # fmt: skip
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.startswith("search_digits.py: error: study 'digits' searches another space: ")
    assert "another version of the space file" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert len(optuna.load_study(study_name="digits", storage=storage).trials) == 0  # nothing ran


@pytest.mark.slow
def test_two_users_studies_in_one_database_stay_apart(server, tmp_path):
    storage = server.createdb("shared")
    users = {"alice": ["--set", "scale.width=0.25"], "bob": ["--set", "scale.width=0.5"]}
    for user, overrides in users.items():
        run = subprocess.run(
            [sys.executable, str(SCRIPT), "--storage", storage, "--study", f"{user}-digits", "--epochs", "1",
             *overrides, "--trials", "2", "--total", "2", "--seed", "0", "--out", f"{user}-report"],
            cwd=tmp_path, capture_output=True, text=True, timeout=WORKER_SECONDS, env=one_thread_env(),
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == ["alice-digits", "bob-digits"]
    for user, overrides in users.items():
        study = optuna.load_study(study_name=f"{user}-digits", storage=storage)
        assert [t.number for t in study.trials] == [0, 1]
        assert all(t.state == STATES.COMPLETE for t in study.trials)
        assert study.user_attrs["space_identity"]["overrides"] == [overrides[1]]
        rows = (tmp_path / f"{user}-report" / "trials.csv").read_text().splitlines()
        assert len(rows) == 3  # the header and this user's two trials, none of the other's
        width = float(overrides[1].split("=")[1])
        for trial in study.trials:  # each trial's MACs are those of this user's space
            space = archbuilder.load_space(SPACE, overrides=overrides[1:])
            assert archbuilder.summarize(space.candidate(trial.params)).inference_macs == trial.values[1]
            assert space.candidate(trial.params).scale.width == width
