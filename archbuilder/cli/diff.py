"""``diff``: what changed between two specs, entry by entry."""

from __future__ import annotations

import argparse
import json

from archbuilder.cli.common import Command, load
from archbuilder.core.escaping import for_terminal_lines
from archbuilder.diff import diff
from archbuilder.ir import load_spec

__all__ = ["register"]


def register(command: Command) -> None:
    parser = command("diff", "what changed from spec A to spec B, block by block", _diff)
    parser.add_argument("old", metavar="A", help="the spec to compare from")
    parser.add_argument("new", metavar="B", help="the spec to compare to (--set applies to B)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _diff(args: argparse.Namespace) -> int:
    result = diff(load_spec(args.old), load(args, args.new))
    # JSON escapes every control character itself; the report shows them as escapes
    print(json.dumps(result.to_dict(), indent=2) if args.json else for_terminal_lines(result.text()))
    return 0
