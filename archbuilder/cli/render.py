"""``render``: draw a spec's architecture diagram."""

from __future__ import annotations

import argparse
from pathlib import Path

from archbuilder.cli.common import Command, UsageError, load, refuse_overwriting_input
from archbuilder.render import DETAILS, ENGINES, RANKDIRS, format_for, render_diagram
from archbuilder.render.raster import DEFAULT_DPI

__all__ = ["default_output", "register"]

_DEFAULT_DETAIL = "branches"


def register(command: Command) -> None:
    render = command(
        "render",
        "draw the architecture diagram: .svg, .png, .pdf (all with pip alone) or .dot",
        _render,
    )
    render.add_argument("spec", metavar="SPEC", help="a spec file or a shipped spec's name (archbuild list)")
    render.add_argument(
        "-o",
        "--output",
        help="output file; its extension picks the format (default: SPEC.svg beside the spec file, or in "
        "the working folder for a shipped spec; SPEC-DETAIL.svg when --detail is not branches)",
    )
    render.add_argument(
        "--detail", choices=DETAILS, default=_DEFAULT_DETAIL, help="level of detail (default branches)"
    )
    render.add_argument(
        "--rankdir", choices=RANKDIRS, default="TB", help="TB: top to bottom (default); LR: left to right"
    )
    render.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    render.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="auto (default): system Graphviz if `dot` is installed, else the embedded one; "
        "embedded: installed with archbuilder, every format; system: Graphviz's `dot`",
    )
    render.add_argument(
        "--dpi",
        type=float,
        default=DEFAULT_DPI,
        help="resolution of a PNG in dots per inch (default %(default)g; 72 is the diagram's natural size)",
    )


def default_output(spec: str, detail: str) -> Path:
    """Where ``render`` writes without ``-o``: ``googlenet.svg``, ``googlenet-layers.svg``,
    beside a spec file, or in the working folder for a shipped spec's name."""
    path = Path(spec)
    folder = path.parent if path.is_file() else Path()
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    suffix = "" if detail == _DEFAULT_DETAIL else f"-{detail}"
    return folder / f"{stem}{suffix}.svg"


def _render(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else default_output(args.spec, args.detail)
    refuse_overwriting_input(args.spec, output)
    format_for(output)  # an unsupported extension is a usage error, found before any work
    if not 0 < args.dpi <= 1200:
        raise UsageError(f"--dpi must be above 0 and at most 1200, not {args.dpi:g}")
    spec = load(args, args.spec)
    options = dict(detail=args.detail, shapes=not args.no_shapes, rankdir=args.rankdir, engine=args.engine)
    render_diagram(spec, output, dpi=args.dpi, **options)
    print(f"wrote {output} ({args.detail} detail)")
    return 0
