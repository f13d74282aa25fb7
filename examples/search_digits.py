"""Search a small Inception for scikit-learn's digits with Optuna: test accuracy against MACs.

    python examples/search_digits.py                        # 24 trials in search-digits.db (SQLite)
    python examples/search_digits.py --trials 30 --epochs 4
    python examples/search_digits.py --storage postgresql://user:password@db-host/optuna --trials 10
    python examples/search_digits.py --storage sqlite:///search-digits.db --report   # tables and plot only

The space is specs/spaces/inception-digits.yaml (``--space``, ``--set``). Each trial takes its
candidate from ``space.suggest(trial)`` (one Optuna parameter per decision; a candidate over
the space's budget is pruned there, before any model is built), builds it, and trains it with
examples/train_digits.py's ``train``. The two objectives are the test accuracy (maximized)
and the MACs of one inference pass (minimized).

Any number of workers, on one machine or many, can run the same command against one
``--storage`` (a SQLite file on one machine; a PostgreSQL or MySQL URL across machines):
Optuna hands each trial to exactly one worker. ``--trials`` is per worker; ``--total`` stops
every worker once the study has that many finished trials. When a worker ends it writes the
Pareto front of the whole study to ``--out``: ``front.md`` (a table), ``front.png``, one
spec file per front member, and ``trials.csv``. Needs ``pip install "archbuilder[examples,search]"``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

import torch

import archbuilder
from archbuilder.extras import check, exit_if_missing
from archbuilder.files import write_atomic
from archbuilder.space.output import sample_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_digits  # the training code this search shares (examples/ is on the path)

PROGRAM, NEEDED_FOR = "search_digits.py", "the digits search"  # a missing optional package's message
with exit_if_missing(PROGRAM, needed_for=NEEDED_FOR):  # as when run: one line naming the extra, exit 2
    import optuna

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPACE = ROOT / "specs" / "spaces" / "inception-digits.yaml"
DIRECTIONS = ["maximize", "minimize"]  # test accuracy, MACs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="the search space file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a space value"
    )
    parser.add_argument("--storage", default="sqlite:///search-digits.db", help="Optuna RDB URL")
    parser.add_argument("--study", default="inception-digits", help="study name (shared by all workers)")
    parser.add_argument("--trials", type=int, default=24, help="trials this worker runs (24)")
    parser.add_argument("--total", type=int, help="stop once the study has this many finished trials")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per trial (3)")
    parser.add_argument("--seed", type=int, help="sampler seed (give each worker its own)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per trial (1)")
    parser.add_argument("--out", type=Path, default=Path("search-digits"), help="report folder")
    parser.add_argument("--report", action="store_true", help="run no trials; write the report")
    parser.add_argument("--no-report", action="store_true", help="write no report (a worker among many)")
    return parser.parse_args(argv)


def open_study(args: argparse.Namespace, space: archbuilder.SearchSpace) -> optuna.Study:
    """The shared study, created by whichever worker comes first."""
    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=8)
    for attempt in range(5):  # workers creating one new database together can collide once
        try:
            storage: str | optuna.storages.RDBStorage = args.storage
            if args.storage.startswith("sqlite"):  # wait for the other workers' writes, don't fail
                storage = optuna.storages.RDBStorage(
                    args.storage, engine_kwargs={"connect_args": {"timeout": 60}}
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
    known = study.user_attrs.get("space_sha256")
    if known is None:
        study.set_user_attr("space_sha256", space.sha256)
    elif known != space.sha256:
        raise SystemExit(
            f"study '{args.study}' searched another space (sha256 {known[:12]}...); use a new --study"
        )
    return study


def objective(
    trial: optuna.Trial, space: archbuilder.SearchSpace, args: argparse.Namespace
) -> tuple[float, int]:
    spec = space.suggest(trial)  # optuna.TrialPruned here when the candidate is invalid or over budget
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
        outcome = f"{trial.state.name.lower()}: {trial.user_attrs.get('rejected', '')}"
    print(f"trial {trial.number}: {outcome}; {json.dumps(trial.params)}", flush=True)


def write_report(study: optuna.Study, space: archbuilder.SearchSpace, args: argparse.Namespace) -> None:
    """front.md, front.png, one spec per front member, trials.csv (all written atomically)."""
    args.out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = sorted(study.best_trials, key=lambda t: t.values[1]) if done else []
    lines = [
        f"Study `{args.study}`: {len(trials)} trials, {len(done)} complete, "
        f"{sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)} pruned before building.",
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
                t.user_attrs.get("rejected", ""),
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
    space = archbuilder.load_space(args.space, overrides=args.set)
    study = open_study(args, space)
    if not args.report:
        start = time.perf_counter()
        callbacks = [log_trial]
        if args.total:
            finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
            callbacks.append(optuna.study.MaxTrialsCallback(args.total, states=finished))
        study.optimize(lambda trial: objective(trial, space, args), n_trials=args.trials, callbacks=callbacks)
        print(f"this worker: {args.trials} trials in {time.perf_counter() - start:.1f} s", flush=True)
    if not args.no_report:
        write_report(study, space, args)
    return 0


if __name__ == "__main__":
    with exit_if_missing(PROGRAM, needed_for=NEEDED_FOR):  # a missing package: one line, exit 2
        sys.exit(main())
