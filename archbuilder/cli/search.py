"""``space`` and ``sample``: look into a search space, and write valid candidates of it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from archbuilder.cli.common import Command, UsageError, positive
from archbuilder.core.escaping import for_terminal, for_terminal_lines
from archbuilder.space import SearchSpace, load_space
from archbuilder.space.budget import MAX_DRAWS, MAX_PROBES, MAX_SAMPLES, MAX_TRIES, PROBE_BUDGET
from archbuilder.space.constraints import shown
from archbuilder.space.output import write_sample
from archbuilder.space.tree import size_text

__all__ = ["register"]

_JSON_SIZE_LIMIT = 10**4000  # Python writes no integer of more than 4,300 digits


def register(command: Command) -> None:
    space = command("space", "a search space's decisions, raw size and estimated valid fraction", _space)
    space.add_argument("space", metavar="SPACE")
    space.add_argument(
        "--draws",
        type=_at_most(MAX_DRAWS),
        default=200,
        help=f"random candidates judged (200; at most {MAX_DRAWS:,})",
    )
    space.add_argument("--seed", type=int, default=0)
    space.add_argument(
        "--probes",
        type=_at_most(MAX_PROBES),
        default=8,
        help=f"random candidates tried per option before calling it dead (8; at most {MAX_PROBES})",
    )
    space.add_argument("--json", action="store_true", help="machine-readable output")
    space.add_argument("--no-progress", action="store_true", help="no progress bar")

    sample = command("sample", "write N distinct valid candidates of a search space as spec files", _sample)
    sample.add_argument("space", metavar="SPACE")
    sample.add_argument(
        "-n",
        "--count",
        type=_at_most(MAX_SAMPLES),
        default=10,
        help=f"candidates to write (10; at most {MAX_SAMPLES:,})",
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (0): the same seed, the same files")
    sample.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the spec files")
    sample.add_argument(
        "--max-tries",
        type=_at_most(MAX_TRIES),
        help=f"give up after this many draws (50 N + 1000; at most {MAX_TRIES:,})",
    )
    sample.add_argument("--no-progress", action="store_true", help="no progress bar")


def _at_most(limit: int) -> Callable[[str], int]:
    """An argparse type: an integer from 1 to ``limit`` (the work it asks for is bounded)."""

    def parse(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"at most {limit:,}, not {value:,}")
        return value

    return parse


def _load(args: argparse.Namespace) -> SearchSpace:
    return load_space(args.space, overrides=args.set)


def _bar(
    total: int, unit: str, disabled: bool
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A tqdm progress callback on a terminal (tqdm is optional), and its closer."""
    if disabled or not sys.stderr.isatty():
        return None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(total=total, unit=unit, leave=False, file=sys.stderr)

    def update(found: int, tried: int) -> None:
        bar.n = found
        bar.set_postfix(tried=tried, refresh=False)
        bar.refresh()

    return update, bar.close


def _space(args: argparse.Namespace) -> int:
    space = _load(args)
    progress, close = _bar(args.draws, "candidate", args.no_progress)
    try:
        estimate = space.estimate(args.draws, seed=args.seed, progress=progress)
    finally:
        close()
    reports = space.check_options(probes=args.probes, seed=args.seed)
    unprobed = sum(1 for r in reports if not r.valid and not r.tries)
    reports = [r for r in reports if not r.valid and r.tries]
    low, high = estimate.interval
    if args.json:
        data = {
            "size": space.size if isinstance(space.size, int) and space.size < _JSON_SIZE_LIMIT else None,
            "decisions": [
                {"name": d.name, "kind": d.kind, "values": d.describe(), "line": d.location[1]}
                for d in space.decisions
            ],
            "constraints": space.constraints.to_dict(),
            "valid": {"draws": estimate.draws, "valid": estimate.valid, "interval": [low, high]},
            "never_valid": [
                {"decision": r.decision.name, "option": r.option, "reason": str(r.problem)} for r in reports
            ],
            "options_not_probed": unprobed,
        }
        print(json.dumps(data, indent=2))
        return 0
    print(for_terminal_lines(_table(space)))
    for key, value in space.constraints.to_dict().items():
        print(f"constraint {key}: {shown(value)}")
    print(f"raw size: {size_text(space.size)} combinations")
    fraction = f"{estimate.valid} of {estimate.draws} random candidates valid ({estimate.fraction:.1%}; 95% interval {low:.1%}–{high:.1%})"
    if isinstance(space.size, int):
        fraction += f": about {size_text(round(Fraction(space.size * estimate.valid, estimate.draws)))} valid candidates"
    print(fraction)
    for report in reports:
        print(
            for_terminal(
                f"{report.decision.name} = {report.option!r}: no valid candidate in {report.tries} tries; "
                f"first problem: {report.problem}"
            )
        )
    if unprobed:
        print(f"{unprobed:,} options not probed: {PROBE_BUDGET:,} candidates were judged, the probe budget")
    return 0


def _table(space: SearchSpace) -> str:
    rows = [("Decision", "Values", "Line")]
    rows += [(d.name, d.describe(), str(d.location[1] or "")) for d in space.decisions]
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(3)]
    return "\n".join(
        "  ".join(cell[:60].ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def _sample(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output} is a file; give a folder")
    source = Path(args.space)
    stem = source.stem if source.is_file() else "candidate"
    clash = source.name == "samples.json" or source.name.startswith(f"{stem}-")
    if clash and source.is_file() and source.resolve().parent == output.resolve():
        raise UsageError(f"writing to {output} could overwrite the space {source}; choose another -o")
    space = _load(args)
    progress, close = _bar(args.count, "spec", args.no_progress)
    try:
        sample = space.sample(args.count, seed=args.seed, max_tries=args.max_tries, progress=progress)
    finally:
        close()
    written = write_sample(
        sample,
        output,
        space=str(args.space),
        stem=stem,
        sha256=space.sha256,
        seed=args.seed,
        overrides=args.set,
    )
    stats = sample.stats
    print(
        for_terminal(
            f"wrote {len(written)} spec files to {output} ({stats.tried} drawn, {stats.duplicates} repeats, "
            f"rejection rate {stats.rejection_rate:.1%})"
        ),
        file=sys.stderr,
    )
    for kind, count in stats.rejected.items():
        print(
            for_terminal(f"  rejected {count} ({kind}), first: {stats.first_reasons[kind]}"), file=sys.stderr
        )
    if len(written) < args.count:
        why = "the space holds no more" if stats.exhausted else f"gave up after {stats.tried} draws"
        print(
            f"archbuild sample: only {len(written)} of {args.count} valid candidates: {why}", file=sys.stderr
        )
        return 1
    return 0
