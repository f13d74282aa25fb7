"""``emit`` and ``schema``: write specs and the spec format's JSON Schema."""

from __future__ import annotations

import argparse
import sys

from archbuilder.catalog.variants import VARIANTS, emit_yaml
from archbuilder.cli.common import STDOUT, Command, load, refuse_overwriting_input
from archbuilder.core.errors import escape
from archbuilder.core.files import shown_path, write_atomic
from archbuilder.spec.schema import schema_reference, schema_text

__all__ = ["register"]


def register(command: Command) -> None:
    emit = command("emit", "write a variant of a spec as a new spec", _emit)
    emit.add_argument("spec", metavar="SPEC")
    emit.add_argument("--variant", required=True, choices=list(VARIANTS), help="which variant to emit")
    emit.add_argument("-o", "--output", help="output file (default, or -: standard output)")
    emit.add_argument(
        "--schema",
        metavar="REF",
        help="the JSON Schema the first line points editors to ('' for no line; "
        "default: this checkout's schema/archbuilder.schema.json, relative to the output)",
    )

    schema = command("schema", "print the JSON Schema of the spec format", _schema)
    schema.add_argument("-o", "--output", help="write it to this file instead of standard output (-)")


def _emit(args: argparse.Namespace) -> int:
    if args.output == STDOUT:
        args.output = None
    if args.output is not None:
        refuse_overwriting_input(args.spec, args.output)
    # The header's command names the spec without this machine's folders (shown_path).
    command = " ".join([shown_path(args.spec), *(f"--set {override}" for override in args.set or ())])
    schema = args.schema if args.schema is not None else schema_reference(args.output)
    text = emit_yaml(load(args, args.spec), args.variant, source=command, schema=schema or None)
    if args.output is None:
        print(text, end="")
        return 0
    write_atomic(args.output, text.encode())
    print(escape(f"wrote {args.output} ({args.variant} variant of {args.spec})"), file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    if args.output not in (None, STDOUT):
        refuse_overwriting_input("", args.output)  # a device or FIFO is refused before any work
    if args.output in (None, STDOUT):
        print(schema_text(), end="")
        return 0
    write_atomic(args.output, schema_text().encode())
    print(escape(f"wrote {args.output}"), file=sys.stderr)
    return 0
