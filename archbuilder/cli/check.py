"""``validate`` and ``summary``: check specs, and count what they describe."""

from __future__ import annotations

import argparse
import json
import sys

from archbuilder.analysis.summary import summarize
from archbuilder.cli.common import Command, load
from archbuilder.core.errors import SpecError, escape
from archbuilder.core.escaping import for_terminal_lines

__all__ = ["register"]


def register(command: Command) -> None:
    validate = command("validate", "check specs; exit 1 listing every problem", _validate)
    validate.add_argument("specs", nargs="+", metavar="SPEC", help="spec files")

    summary = command("summary", "per-block output shapes, parameters and MACs", _summary)
    summary.add_argument("spec", metavar="SPEC")
    summary.add_argument("--json", action="store_true", help="machine-readable output")


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            summary = summarize(load(args, path))
        except (SpecError, ValueError, TypeError, OSError, RecursionError, MemoryError) as exc:
            if args.debug:
                raise
            # One bad file never stops the others from being checked.
            print(exc if isinstance(exc, SpecError) else escape(f"{path}: error: {exc}"), file=sys.stderr)
            status = 1
            continue
        print(escape(f"{path}: ok ({summary.model}, {summary.params:,} parameters)"))
    return status


def _summary(args: argparse.Namespace) -> int:
    summary = summarize(load(args, args.spec))
    print(json.dumps(summary.to_dict(), indent=2) if args.json else for_terminal_lines(summary.table()))
    return 0
