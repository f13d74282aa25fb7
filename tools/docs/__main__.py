"""``python -m tools.docs [--check] [TARGET ...]``: regenerate the docs' generated regions, or
check that they are current (see ``tools.docs``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.docs import run
from tools.docs.registry import NAMES, TARGETS
from tools.docs.target import Tree


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.docs", description="Regenerate the docs' generated regions and pages."
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"one of {', '.join(NAMES)}; none: all")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming every stale region or file"
    )
    parser.add_argument("--list", action="store_true", help="list the targets and what each writes")
    parser.add_argument(
        "--results", type=Path, help="read the benchmark logs from here (default bench/results)"
    )
    return parser


def main(argv: Sequence[str] | None = None, tree: Tree | None = None) -> int:
    """The command; ``tree`` is where the docs are read and written (the repository by default)."""
    args = parser().parse_args(argv)
    unknown = [name for name in args.targets if name not in NAMES]
    if unknown:
        parser().error(f"no target {', '.join(unknown)}; the targets are {', '.join(NAMES)}")
    if args.list:
        for target in TARGETS:
            print(f"{target.name:<18}{target.summary}")
        return 0
    tree = tree or Tree()
    if args.results:
        tree = dataclasses.replace(tree, results=args.results)
    chosen = [target for target in TARGETS if not args.targets or target.name in args.targets]
    failed: list[str] = []
    for target in chosen:
        try:
            outputs = target.render(tree)
            if args.check:
                stale = run.stale(outputs, tree)
                for label in stale:
                    print(f"stale: {label}")
                print(f"{target.name}: {len(outputs) - len(stale)} of {len(outputs)} current")
            else:
                stale = []
                written = run.write(outputs, tree)
                for path in written:
                    print(f"wrote {path}")
                print(f"{target.name}: {len(written) or 'no'} file{'s' * (len(written) != 1)} changed")
        except ValueError as error:  # a doc without the lines a region needs, a region of nothing
            print(f"error: {target.name}: {error}", file=sys.stderr)
            stale = [target.name]
        if stale:
            failed.append(target.name)
    if failed and args.check:
        print(f"stale: run `python -m tools.docs {' '.join(failed)}`", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
