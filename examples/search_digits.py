"""Search a small Inception for scikit-learn's digits with Optuna: test accuracy against MACs.

    python examples/search_digits.py                        # 24 trials in search-digits.db (SQLite)
    python examples/search_digits.py --trials 30 --epochs 4
    python examples/search_digits.py --storage postgresql+psycopg://user:password@127.0.0.1:5432/optuna --total 40
    python examples/search_digits.py --storage journal:search-digits.log --total 40   # a shared file, no server
    python examples/search_digits.py --storage sqlite:///search-digits.db --report   # tables and plot only

The space is specs/spaces/inception-digits.yaml (``--space``, ``--set``). Each trial takes its
candidate from ``space.suggest(trial)`` (one Optuna parameter per decision; a candidate over
the space's budget is pruned there, before any model is built), builds it, and trains it with
examples/train_digits.py's ``train``. The two objectives are the test accuracy (maximized)
and the MACs of one inference pass (minimized).

Any number of workers, on one machine or many, can run the same command against one
``--storage`` (a SQLite file on one machine; a PostgreSQL or MySQL URL, or a journal file on
a shared file system, across machines): Optuna hands each trial to exactly one worker.
``--trials`` is per worker; ``--total N`` makes the study end with exactly N finished trials,
whichever workers run them. A running trial beats every ``--heartbeat`` seconds; one silent
for ``--grace`` seconds (its worker died) is marked failed by another worker and run again
with the same decisions (``--retries``). A worker refuses a study made from another space.
When a worker ends it writes the Pareto front of the whole study to ``--out``: ``front.md``
(a table), ``front.png``, one spec file per front member, and ``trials.csv``. Needs
``pip install "archbuilder[examples,search]"`` (and ``archbuilder[postgres]`` for PostgreSQL).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import archbuilder
from archbuilder.core.extras import check, exit_if_missing
from archbuilder.core.files import write_atomic
from archbuilder.space.output import sample_text
from archbuilder.space.quota import ERROR, REJECTED, is_over_quota, taken_slots
from archbuilder.space.study import StudyMismatch, join_study, open_storage

PROGRAM, NEEDED_FOR = "search_digits.py", "the digits search"  # a missing optional package's message
with exit_if_missing(PROGRAM, needed_for=NEEDED_FOR):  # as when run: one line naming the extra, exit 2
    import optuna
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import train_digits  # the training code this search shares (examples/ is on the path)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPACE = ROOT / "specs" / "spaces" / "inception-digits.yaml"
DIRECTIONS = ["maximize", "minimize"]  # test accuracy, MACs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="the search space file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a space value"
    )
    parser.add_argument(
        "--storage", default="sqlite:///search-digits.db", help="Optuna RDB URL, or journal:FILE"
    )
    parser.add_argument("--study", default="inception-digits", help="study name (shared by all workers)")
    parser.add_argument("--trials", type=int, default=24, help="trials this worker runs (24)")
    parser.add_argument("--total", type=int, help="the study ends with exactly this many finished trials")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per trial (3)")
    parser.add_argument("--seed", type=int, help="sampler seed (give each worker its own)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per trial (1)")
    parser.add_argument("--out", type=Path, default=Path("search-digits"), help="report folder")
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        metavar="S",
        help="a running trial beats every S seconds (60; 0: off)",
    )
    parser.add_argument(
        "--grace", type=int, metavar="S", help="a trial silent this long is failed (2 x --heartbeat)"
    )
    parser.add_argument("--retries", type=int, default=2, help="runs again of a failed trial (2)")
    parser.add_argument("--report", action="store_true", help="run no trials; write the report")
    parser.add_argument("--no-report", action="store_true", help="write no report (a worker among many)")
    return parser.parse_args(argv)


def open_study(args: argparse.Namespace, space: archbuilder.SearchSpace) -> optuna.Study:
    """The shared study, created by whichever worker comes first; refused if of another space."""
    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=8)
    beat = args.heartbeat or None
    for attempt in range(5):  # workers creating one new database together can collide once
        try:
            # SQLite: wait for the other workers' writes, don't fail
            sqlite = {"connect_args": {"timeout": 60}} if args.storage.startswith("sqlite") else None
            storage = open_storage(
                args.storage,
                heartbeat_interval=beat,
                grace_period=args.grace if beat else None,
                max_retry=args.retries if beat else None,
                engine_kwargs=sqlite,
            )
            study = optuna.create_study(
                storage=storage,
                study_name=args.study,
                directions=DIRECTIONS,
                sampler=sampler,
                load_if_exists=True,
            )
            break
        except Exception:  # the next attempt finds the tables the other worker made
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    try:
        join_study(study, space.identity)
    except StudyMismatch as error:
        raise SystemExit(f"{PROGRAM}: error: {error}") from None
    return study


class OverTotal(Exception):
    """This trial would pass --total: other workers took the last ones meanwhile."""


class _NoOverTotalTraceback(logging.Filter):
    """Optuna logs a caught exception with its traceback: not for a trial over --total."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is OverTotal)


def run_worker(study: optuna.Study, space: archbuilder.SearchSpace, args: argparse.Namespace) -> int:
    """Up to ``--trials`` trials; with ``--total``, until the study has that many finished.

    The first ``--total`` slots taken are the study's (archbuilder.space.quota: a trial's
    number, or for a run again the number of the trial it repeats): a trial asked past them
    (two workers asked at once) fails at once as over the total. While the last ones run
    elsewhere this worker waits, and fails those whose heartbeat stopped, so that their
    retries run here. The number of trials this worker ran.
    """
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    waiting = optuna.trial.TrialState.WAITING
    retries = args.retries if args.heartbeat else 0  # without a heartbeat nothing runs again
    ran = 0
    while ran < args.trials:
        if args.total:
            trials = study.get_trials(deepcopy=False)
            if sum(t.state in done for t in trials) >= args.total:
                break
            taken = len(taken_slots(trials, retries))
            if taken >= args.total and not any(t.state == waiting for t in trials):
                if not args.heartbeat:
                    break  # nothing would notice a dead worker's trial: don't wait for it
                time.sleep(1)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)  # queues their retries
                continue

        def one(trial: optuna.Trial) -> tuple[float, int]:
            if args.total:
                trials = study.get_trials(deepcopy=False)
                frozen = next(t for t in trials if t.number == trial.number)
                if is_over_quota(frozen, trials, args.total, retries):
                    trial.set_user_attr(REJECTED, f"over --total {args.total}")
                    raise OverTotal
            try:
                return objective(trial, space, args)
            except (optuna.TrialPruned, optuna.exceptions.UpdateFinishedTrialError):
                raise  # pruned; or failed as silent by another worker, its copy queued
            except BaseException as error:  # failed loudly: no retry comes, its slot is free
                trial.set_user_attr(ERROR, type(error).__name__)
                raise

        try:
            study.optimize(one, n_trials=1, callbacks=[log_trial], catch=(OverTotal,))
        except optuna.exceptions.UpdateFinishedTrialError:  # our heartbeat came too late
            print("a trial of this worker was failed as silent by another; its copy runs anyway", flush=True)
        ran += 1
    return ran


def objective(
    trial: optuna.Trial, space: archbuilder.SearchSpace, args: argparse.Namespace
) -> tuple[float, int]:
    spec = space.suggest(trial)  # optuna.TrialPruned here when the candidate is invalid or over budget
    retry = trial.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")  # Optuna's retry
    print(f"trial {trial.number} started{f' (trial {retry} again)' if retry is not None else ''}", flush=True)
    start = time.perf_counter()
    torch.manual_seed(trial.number)
    model = archbuilder.build(spec)
    train_args = train_digits.parse_args(
        ["--epochs", str(args.epochs), "--no-progress", "--no-checkpoint", "--seed", str(trial.number)]
    )
    run = train_digits.Run("cpu", args.threads, quiet=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_args.lr, weight_decay=train_args.weight_decay)
    accuracy = train_digits.train(model, optimizer, train_args, run)
    trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
    return accuracy, trial.user_attrs["macs"]


def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if trial.state == optuna.trial.TrialState.COMPLETE:
        accuracy, macs = trial.values
        outcome = f"accuracy {accuracy:.2%}, {int(macs):,} MACs, {trial.user_attrs['seconds']} s"
    else:
        outcome = f"{trial.state.name.lower()}: {trial.user_attrs.get(REJECTED, '')}"
    print(f"trial {trial.number}: {outcome}; {json.dumps(trial.params)}", flush=True)


def write_report(study: optuna.Study, space: archbuilder.SearchSpace, args: argparse.Namespace) -> None:
    """front.md, front.png, one spec per front member, trials.csv (all written atomically)."""
    args.out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = sorted(study.best_trials, key=lambda t: t.values[1]) if done else []
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    rerun = sum("failed_trial" in t.system_attrs for t in trials)  # Optuna's retry callback's copies
    lines = [
        f"Study `{args.study}`: {len(trials)} trials, {len(done)} complete, "
        f"{sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)} pruned before building"
        + (f", {len(failed)} failed, {rerun} run again." if failed else "."),
        "",
        "| trial | test accuracy | MACs | params | seconds | decisions |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for trial in front:
        decisions = ", ".join(f"{name}={value}" for name, value in trial.params.items())
        lines.append(
            f"| {trial.number} | {trial.values[0]:.2%} | {int(trial.values[1]):,} | {trial.user_attrs['params']:,} "
            f"| {trial.user_attrs['seconds']} | {decisions} |"
        )
        candidate = space.evaluate(trial.params)
        text = sample_text(
            candidate,
            space=_shown(args.space),
            sha256=space.sha256,
            seed=None,
            index=trial.number,
            by=f"Optuna study {args.study}",
        )
        write_atomic(args.out / f"front-trial{trial.number:03d}.yaml", text.encode())
    write_atomic(args.out / "front.md", ("\n".join(lines) + "\n").encode())
    write_atomic(args.out / "trials.csv", _csv(trials).encode())
    if done:
        write_atomic(args.out / "front.png", _plot(done, front))
    print("\n".join(lines))


def _shown(path: Path) -> str:
    """The space's path as the header records it: from the checkout's root when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _csv(trials: list[optuna.trial.FrozenTrial]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "state", "test_accuracy", "macs", "params", "seconds", "decisions", "rejected"])
    for t in trials:
        accuracy = t.values[0] if t.values else ""
        counts = [t.user_attrs.get(key, "") for key in ("macs", "params", "seconds")]
        writer.writerow(
            [
                t.number,
                t.state.name,
                accuracy,
                *counts,
                json.dumps(t.params),
                t.user_attrs.get(REJECTED, ""),
            ]
        )
    return out.getvalue()


def _plot(done: list[optuna.trial.FrozenTrial], front: list[optuna.trial.FrozenTrial]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4), dpi=120)
    axes.scatter(
        [t.values[1] / 1e6 for t in done], [100 * t.values[0] for t in done], c="#bbbbbb", label="trials"
    )
    axes.plot(
        [t.values[1] / 1e6 for t in front],
        [100 * t.values[0] for t in front],
        "o-",
        c="#d62728",
        label="Pareto front",
    )
    for t in front:
        axes.annotate(
            str(t.number), (t.values[1] / 1e6, 100 * t.values[0]), textcoords="offset points", xytext=(4, -10)
        )
    axes.set(
        xlabel="MACs per image (millions)", ylabel="test accuracy (%)", title="digits: accuracy against MACs"
    )
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # What the trials and the report import, checked before the first trial rather than after the last.
    needed = ([] if args.report else ["sklearn"]) + ([] if args.no_report else ["matplotlib"])
    check(*needed, needed_for=NEEDED_FOR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        handler.addFilter(_NoOverTotalTraceback())
    space = archbuilder.load_space(args.space, overrides=args.set)
    study = open_study(args, space)
    if not args.report:
        start = time.perf_counter()
        ran = run_worker(study, space, args)
        print(f"this worker: {ran} trials in {time.perf_counter() - start:.1f} s", flush=True)
    if not args.no_report:
        write_report(study, space, args)
    return 0


if __name__ == "__main__":
    with exit_if_missing(PROGRAM, needed_for=NEEDED_FOR):  # a missing package: one line, exit 2
        sys.exit(main())
