"""``render``: draw a spec's architecture diagram."""

from __future__ import annotations

import argparse
from pathlib import Path

from archbuilder.cli.common import STDOUT, Command, load, refuse_overwriting_input, to_stdout
from archbuilder.render import DETAILS, ENGINES, RANKDIRS, format_for, render_diagram

__all__ = ["register"]


def register(command: Command) -> None:
    render = command("render", "draw the architecture diagram (.svg, .png, .pdf or .dot)", _render)
    render.add_argument("spec", metavar="SPEC")
    render.add_argument(
        "-o",
        "--output",
        help="output file; its extension picks the format (default: SPEC with .svg; -: SVG to standard output)",
    )
    render.add_argument(
        "--detail", choices=DETAILS, default="branches", help="level of detail (default branches)"
    )
    render.add_argument("--rankdir", choices=RANKDIRS, default="TB", help="TB: top to bottom (default); LR")
    render.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    render.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="system Graphviz, the embedded one (SVG only), or auto (system if installed)",
    )


def _render(args: argparse.Namespace) -> int:
    if args.output == STDOUT:  # SVG on standard output
        spec = load(args, args.spec)
        to_stdout(lambda path: render_diagram(spec, path, **_options(args)), ".svg")
        return 0
    output = Path(args.output) if args.output else Path(args.spec).with_suffix(".svg")
    refuse_overwriting_input(args.spec, output)
    format_for(output)  # an unsupported extension is a usage error, found before any work
    spec = load(args, args.spec)
    render_diagram(spec, output, **_options(args))
    print(f"wrote {output} ({args.detail} detail)")
    return 0


def _options(args: argparse.Namespace) -> dict:
    return dict(detail=args.detail, shapes=not args.no_shapes, rankdir=args.rankdir, engine=args.engine)
