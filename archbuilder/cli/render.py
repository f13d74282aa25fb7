"""``render``: draw a spec's architecture diagram, or an interactive page of it."""

from __future__ import annotations

import argparse
from pathlib import Path

from archbuilder.analysis.overlay import METRICS, overlay_for, read_profile
from archbuilder.cli.common import STDOUT, Command, UsageError, load, refuse_overwriting_input, to_stdout
from archbuilder.core.escaping import for_terminal
from archbuilder.ir import load_spec, lower
from archbuilder.render import DETAILS, ENGINES, RANKDIRS, THEMES, output_format, render_diagram
from archbuilder.render.layout import LAYOUTS
from archbuilder.render.output import MAX_PNG_PX, MAX_WIDTH_PX, MIN_AUTO_DPI
from archbuilder.render.raster import DEFAULT_DPI

__all__ = ["add_overlay_options", "color_by", "default_output", "register"]

_DEFAULT_DETAIL = "branches"


def register(command: Command) -> None:
    render = command(
        "render",
        "draw the architecture diagram: .svg, .png, .pdf (all with pip alone), .dot, or an interactive .html",
        _render,
    )
    render.add_argument("spec", metavar="SPEC", help="a spec file or a shipped spec's name (archbuild list)")
    render.add_argument(
        "-o",
        "--output",
        help="output file; its extension picks the format (default: SPEC.svg beside the spec file, or in "
        "the working folder for a shipped spec; SPEC-DETAIL.svg when --detail is not branches; "
        "SPEC-vs-B.svg with --compare B; -: SVG to standard output)",
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
    size = render.add_mutually_exclusive_group()
    size.add_argument(
        "--dpi",
        type=float,
        help=f"resolution of a PNG in dots per inch (72 is the diagram's natural size; default: "
        f"{DEFAULT_DPI:g}, lowered until the longer side is at most {MAX_PNG_PX} px, but not below "
        f"{MIN_AUTO_DPI:g}, where the smallest text is 9 px)",
    )
    size.add_argument(
        "--width", type=int, metavar="PX", help="a PNG this many pixels wide (a slide, a column)"
    )
    _add_view_options(render)
    add_overlay_options(render)


def add_overlay_options(parser: argparse.ArgumentParser) -> None:
    """--color-by and --overlay (render and serve)."""
    parser.add_argument(
        "--color-by",
        choices=METRICS,
        help="fill every node and block by its value on one scale (viridis; log where the values "
        "span over 100×) with a colour bar: params, macs, activations (float32 output bytes per "
        "sample) or latency (ms, from --overlay)",
    )
    parser.add_argument(
        "--overlay",
        metavar="PROF.json",
        help="a profile of SPEC written by `archbuild profile -o`: the latency values (implies --color-by latency)",
    )


def color_by(args: argparse.Namespace) -> str | None:
    """The metric to colour by: --color-by, or latency when only --overlay is given."""
    metric = args.color_by or ("latency" if args.overlay else None)
    if metric == "latency" and not args.overlay:
        raise UsageError(
            "--color-by latency needs --overlay PROF.json (write one with archbuild profile SPEC -o)"
        )
    if args.overlay and metric != "latency":
        raise UsageError(f"--overlay gives latencies; it cannot be used with --color-by {metric}")
    return metric


def _add_view_options(render: argparse.ArgumentParser) -> None:
    """--compare and --layout: compare views and wrapped columns."""
    render.add_argument(
        "--compare",
        metavar="B",
        help="draw spec B instead, with what changed from SPEC marked (added, changed, renamed; removed listed)",
    )
    render.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="auto",
        help="tall: one column; compact: the main chain wrapped into columns for a landscape page; "
        "auto (default): columns when one would be thinner than about 1:2.6 or taller than 30 inches",
    )
    render.add_argument(
        "--unroll",
        action="store_true",
        help="draw every copy of a repeated block (default: consecutive blocks of one structure "
        "drawn once, as block17 ×20)",
    )
    render.add_argument(
        "--theme",
        choices=list(THEMES),
        default="default",
        help="default: colours; paper: greys, a serif font and a white page, for print (PDF for LaTeX)",
    )


def default_output(spec: str, detail: str, compare: str | None = None) -> Path:
    """Where ``render`` writes without ``-o``: ``googlenet.svg``, ``googlenet-layers.svg``,
    beside a spec file, or in the working folder for a shipped spec's name. With ``--compare
    B`` it is named after both (``googlenet-vs-googlenet-factorized.svg``), so it never
    overwrites the plain drawing of either."""
    path = Path(spec)
    folder = path.parent if path.is_file() else Path()
    stem = _stem(path) if compare is None else f"{_stem(path)}-vs-{_stem(Path(compare))}"
    suffix = "" if detail == _DEFAULT_DETAIL else f"-{detail}"
    return folder / f"{stem}{suffix}.svg"


def _stem(path: Path) -> str:
    return path.stem if path.suffix in (".yaml", ".yml") else path.name


def _render(args: argparse.Namespace) -> int:
    to_standard_output = args.output == STDOUT  # SVG on standard output
    output = Path(args.output) if args.output else default_output(args.spec, args.detail, args.compare)
    if not to_standard_output:
        for source in (args.spec, args.compare):
            if source:
                refuse_overwriting_input(source, output)
        fmt = output_format(output)  # an unsupported extension is a usage error, found before any work
    if args.dpi is not None and not 0 < args.dpi <= 1200:
        raise UsageError(f"--dpi must be above 0 and at most 1200, not {args.dpi:g}")
    if args.width is not None and not 16 <= args.width <= MAX_WIDTH_PX:
        raise UsageError(f"--width must be 16 to {MAX_WIDTH_PX} pixels, not {args.width}")
    options = dict(detail=args.detail, shapes=not args.no_shapes, rankdir=args.rankdir, engine=args.engine)
    options.update(layout=args.layout, dpi=args.dpi, width=args.width, unroll=args.unroll, theme=args.theme)
    metric = color_by(args)
    if args.compare:
        options["compare"] = load_spec(args.spec)
        spec = load(args, args.compare)
    else:
        spec = load(args, args.spec)
    if metric:
        ir = lower(spec)
        profile = read_profile(args.overlay, spec, ir) if args.overlay else None
        options["overlay"] = overlay_for(ir, metric, profile)
    if to_standard_output:
        to_stdout(lambda path: render_diagram(spec, path, **options), ".svg")
        return 0
    render_diagram(spec, output, **options)
    print(
        for_terminal(f"wrote {output} ({'interactive page' if fmt == 'html' else f'{args.detail} detail'})")
    )
    return 0
