"""``render``: draw a spec's architecture diagram."""

from __future__ import annotations

import argparse
from pathlib import Path

from archbuilder.cli.common import Command, load, refuse_overwriting_input
from archbuilder.render import DETAILS, ENGINES, RANKDIRS, output_format, render_diagram
from archbuilder.render.layout import LAYOUTS
from archbuilder.spec import load_spec

__all__ = ["register"]


def register(command: Command) -> None:
    render = command(
        "render", "draw the architecture diagram (.svg, .png, .pdf, .dot, or an interactive .html)", _render
    )
    render.add_argument("spec", metavar="SPEC")
    render.add_argument(
        "-o", "--output", help="output file; its extension picks the format (default: SPEC with .svg)"
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
    _add_view_options(render)


def _add_view_options(render: argparse.ArgumentParser) -> None:
    """--compare and --layout (issue 16's compare views and wrapped columns)."""
    render.add_argument(
        "--compare",
        metavar="B",
        help="draw spec B instead, with what changed from SPEC marked (added, changed, renamed; removed listed)",
    )
    render.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="auto",
        help="tall: one column; compact: the main chain wrapped into columns; auto (default): "
        "compact when one column would be taller than about 1:3",
    )


def _render(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else Path(args.spec).with_suffix(".svg")
    refuse_overwriting_input(args.spec, output)
    fmt = output_format(output)  # an unsupported extension is a usage error, found before any work
    options = dict(detail=args.detail, shapes=not args.no_shapes, rankdir=args.rankdir, engine=args.engine)
    if args.compare:
        refuse_overwriting_input(args.compare, output)
        spec, compare = load(args, args.compare), load_spec(args.spec)
    else:
        spec, compare = load(args, args.spec), None
    render_diagram(spec, output, compare=compare, layout=args.layout, **options)
    print(f"wrote {output} ({'interactive page' if fmt == 'html' else f'{args.detail} detail'})")
    return 0
