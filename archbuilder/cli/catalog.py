"""``list``, ``show`` and ``new``: the shipped specs, one printed, a new spec started from one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archbuilder.catalog import list_specs, new_spec_text, shipped_spec_text
from archbuilder.cli.common import Command, UsageError
from archbuilder.core.escaping import for_terminal
from archbuilder.core.files import write_atomic

__all__ = ["register"]

_DESCRIPTION_WIDTH = 60


def register(command: Command) -> None:
    listing = command("list", "the shipped specs, with parameters, MACs and input size", _list)
    listing.add_argument(
        "pattern", nargs="?", metavar="PATTERN", help="only names matching it, e.g. 'googlenet*'"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    show = command(
        "show", "print a shipped spec's YAML (start your own: archbuild show NAME > mine.yaml)", _show
    )
    show.add_argument("name", metavar="NAME", help="a shipped spec's name (archbuild list)")
    show.add_argument("--schema", metavar="REF", help=_SCHEMA_HELP)

    new = command(
        "new", "write a new spec file copied from a shipped spec, with a header on what to edit", _new
    )
    new.add_argument("output", metavar="FILE", help="the new spec file (refused if it exists)")
    new.add_argument(
        "--from", dest="base", default="googlenet", metavar="NAME", help="shipped spec (default googlenet)"
    )
    new.add_argument("--schema", metavar="REF", help=_SCHEMA_HELP)


_SCHEMA_HELP = (
    "the JSON Schema the first line points editors to ('' for no line; default: a copy of "
    "archbuilder.schema.json beside the file if there is one, else the installed schema)"
)


def _list(args: argparse.Namespace) -> int:
    entries = list_specs(args.pattern)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], indent=2))
        return 0
    if not entries:
        print(f"no shipped spec matches {args.pattern!r}", file=sys.stderr)
        return 1
    width = max(len(entry.name) for entry in entries)
    print(f"{'Name':<{width}}  {'Params':>11}  {'MACs':>7}  {'Input':<11}  Description")
    for entry in entries:
        shape = "×".join(str(size) for size in entry.input)
        description = _shortened(entry.description, _DESCRIPTION_WIDTH)
        macs = f"{entry.inference_macs / 1e9:.2f} G"
        print(f"{entry.name:<{width}}  {entry.inference_params:>11,}  {macs:>7}  {shape:<11}  {description}")
    print("Params and MACs without aux heads, for one sample. Use a name wherever a spec file goes.")
    return 0


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _show(args: argparse.Namespace) -> int:
    print(shipped_spec_text(args.name, schema=args.schema), end="")
    return 0


def _new(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() or output.is_symlink():
        raise UsageError(f"{output} exists; choose another file name (new never overwrites)")
    write_atomic(output, new_spec_text(output, args.base, schema=args.schema).encode())
    message = f"wrote {output} (from {args.base}); check it with: archbuild validate {output}"
    print(for_terminal(message), file=sys.stderr)
    return 0
