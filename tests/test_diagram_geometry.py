"""The diagram-geometry instrument (tests/svg_geometry.py, bench/diagram_geometry.py) counts
what hand-drawn SVGs hold, and reads a real rendering whole."""

from __future__ import annotations

import importlib.util
import math
import sys
from types import ModuleType

import pytest

from archbuilder.render.graph import DETAILS
from archbuilder.render.layout import LAYOUTS

from .conftest import ROOT
from .svg_geometry import (
    Box,
    crossings,
    edges_through_blocks,
    edges_through_nodes,
    measure,
    parse_svg,
    path_polylines,
    struck_labels,
)

NS = 'xmlns="http://www.w3.org/2000/svg"'


def node(name: str, x0: float, y0: float, x1: float, y1: float) -> str:
    points = f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1} {x0},{y0}"
    return f'<g class="node"><title>{name}</title><polygon points="{points}"/></g>'


def cluster(name: str, x0: float, y0: float, x1: float, y1: float) -> str:
    # a rounded box as Graphviz writes it: a path through its corners' control points
    d = f"M{x0},{y0}C{x0},{y0} {x1},{y0} {x1},{y0} {x1},{y0} {x1},{y1} {x1},{y1} {x1},{y1} {x0},{y1} {x0},{y1}"
    return f'<g class="cluster"><title>{name}</title><path d="{d}"/></g>'


def edge(tail: str, head: str, d: str) -> str:
    return f'<g class="edge"><title>{tail}&#45;&gt;{head}</title><path fill="none" d="{d}"/></g>'


def line(a: tuple[float, float], b: tuple[float, float]) -> str:
    """A straight line as one cubic Bézier, its control points a third of the way along."""
    third = [(a[0] + (b[0] - a[0]) * k / 3, a[1] + (b[1] - a[1]) * k / 3) for k in (1, 2)]
    return f"M{a[0]},{a[1]}C" + " ".join(f"{x},{y}" for x, y in [*third, b])


def svg(*parts: str, transform: str = "scale(1 1) rotate(0) translate(0 0)", size: str = "300pt") -> str:
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 300 300" {NS}>'
        f'<g id="graph0" class="graph" transform="{transform}">{"".join(parts)}'
        '<text font-size="8.00" x="1" y="1">label</text></g></svg>'
    )


# a, b above and below a box c in the middle; d beside c
BOXES = (
    node("a", 100, 0, 140, 20),
    node("b", 100, 200, 140, 220),
    node("c", 90, 90, 150, 130),
    node("d", 200, 90, 240, 130),
)


def test_an_edge_through_a_node_counts_and_one_around_it_does_not():
    through = svg(*BOXES, edge("a", "b", line((120, 20), (120, 200))))
    assert [(e.tail, e.head, hits) for e, hits in edges_through_nodes(parse_svg(through))] == [
        ("a", "b", ["c"])
    ]
    around = "M120,20C60,60 60,160 120,200"  # bows left of c (x >= 75 at its widest)
    assert edges_through_nodes(parse_svg(svg(*BOXES, edge("a", "b", around)))) == []


def test_an_edge_ending_at_a_node_or_touching_one_does_not_count():
    into = svg(*BOXES, edge("a", "c", line((120, 20), (120, 90))))
    assert edges_through_nodes(parse_svg(into)) == []
    grazing = svg(*BOXES, edge("a", "b", "M150.5,20C150.5,80 150.5,140 150.5,200"))  # along c's right side
    assert edges_through_nodes(parse_svg(grazing)) == []


def test_a_curve_is_sampled_not_read_as_its_control_polygon():
    # control points inside c, the curve itself passes above it: the Bézier at t=½ is at y=75
    d = "M20,60C100,80 140,80 220,60"
    picture = parse_svg(
        svg(node("p", 0, 50, 20, 70), node("q", 220, 50, 240, 70), BOXES[2], edge("p", "q", d))
    )
    assert edges_through_nodes(picture) == []
    assert max(y for polyline in picture.edges[0].polylines for _, y in polyline) == pytest.approx(75)


def test_two_crossing_edges_are_one_crossing_and_edges_sharing_an_end_none():
    nodes = (
        node("p", 0, 0, 10, 10),
        node("q", 190, 190, 200, 200),
        node("r", 190, 0, 200, 10),
        node("s", 0, 190, 10, 200),
    )
    cross = svg(
        *nodes, edge("p", "q", line((10, 10), (190, 190))), edge("r", "s", line((190, 10), (10, 190)))
    )
    assert [(one.tail, two.tail) for one, two in crossings(parse_svg(cross))] == [("p", "r")]
    assert measure(cross).crossings == 1
    # both leave p, and cross again on the way (a fan): they meet at p, which is no crossing
    fan = svg(
        *nodes, edge("p", "q", line((10, 10), (190, 190))), edge("p", "s", "M10,10C300,150 -100,150 10,190")
    )
    assert crossings(parse_svg(fan)) == []
    apart = svg(*nodes, edge("p", "r", line((10, 5), (190, 5))), edge("s", "q", line((10, 195), (190, 195))))
    assert crossings(parse_svg(apart)) == []


def test_a_pair_that_crosses_twice_counts_once():
    nodes = (
        node("p", 0, 0, 10, 10),
        node("q", 0, 190, 10, 200),
        node("r", 100, 0, 110, 10),
        node("s", 100, 190, 110, 200),
    )
    snake = "M105,10C-150,60 300,140 105,190"  # r to s, swinging left over x = 60 and back
    twice = svg(*nodes, edge("r", "s", snake), edge("p", "q", line((60, 10), (60, 190))))
    assert len(crossings(parse_svg(twice))) == 1


def test_an_edge_inside_its_own_block_is_not_foreign_and_one_through_another_block_is():
    block = cluster("cluster_block", 80, 80, 160, 140)
    inner = (node("x", 100, 90, 140, 100), node("y", 100, 120, 140, 130))
    own = svg(block, *inner, edge("x", "y", line((120, 100), (120, 120))))
    assert edges_through_blocks(parse_svg(own)) == []
    entering = svg(block, *inner, node("a", 100, 0, 140, 20), edge("a", "x", line((120, 20), (120, 90))))
    assert edges_through_blocks(parse_svg(entering)) == []  # an edge into a block holding its head
    ends = (node("a", 100, 0, 140, 20), node("b", 100, 200, 140, 220))
    passing = svg(
        block,
        *ends,
        edge("a", "b", line((170, 20), (170, 200))),
        edge("b", "a", "M120,200C20,150 20,60 120,20"),
    )
    assert edges_through_blocks(parse_svg(passing)) == []  # both bow around it
    foreign = svg(block, *ends, edge("a", "b", line((120, 20), (120, 200))))
    assert [(e.tail, hits) for e, hits in edges_through_blocks(parse_svg(foreign))] == [
        ("a", ["cluster_block"])
    ]
    assert measure(foreign).through_blocks == 1
    assert measure(foreign).through_nodes == 0  # the block is no node


def test_nested_blocks_an_edge_into_the_inner_one_crosses_neither():
    outer, inner = cluster("cluster_outer", 50, 50, 250, 250), cluster("cluster_inner", 100, 100, 200, 200)
    parts = (
        outer,
        inner,
        node("a", 130, 0, 170, 20),
        node("x", 130, 150, 170, 170),
        node("z", 60, 60, 80, 80),
    )
    picture = parse_svg(svg(*parts, edge("a", "x", line((150, 20), (150, 150)))))
    assert edges_through_blocks(picture) == []
    # from a node of the outer block only, through the inner one, to a node outside both
    picture = parse_svg(svg(*parts, edge("z", "a", "M70,80C150,180 200,100 150,20")))
    assert [hits for _, hits in edges_through_blocks(picture)] == [["cluster_inner"]]


def test_boxes_are_placed_by_the_graphs_transform_and_sizes_are_in_px():
    picture = parse_svg(
        svg(node("a", 0, -20, 40, 0), size="72pt", transform="scale(1 1) rotate(0) translate(4 100)")
    )
    assert picture.nodes["a"] == Box(4, 80, 44, 100)
    assert (picture.width_px, picture.height_px) == (96, 96)
    assert picture.min_font_px == pytest.approx(8 * 72 / 300 * 96 / 72)  # 8 units, 72 pt over 300 units


def test_a_path_with_several_sub_paths_and_segments():
    lines = path_polylines("M0,0C10,0 20,0 30,0 40,0 50,0 60,0M0,10L5,10", samples=4)
    assert [len(polyline) for polyline in lines] == [9, 2]
    assert lines[0][-1] == (60, 0) and lines[1] == [(0, 10), (5, 10)]


def test_an_edge_through_a_label_strikes_it():
    label = '<text text-anchor="middle" x="120" y="100" font-size="10">64×28×28</text>'
    own = f'<g class="edge"><title>a&#45;&gt;b</title><path fill="none" d="{line((120, 20), (120, 200))}"/>{label}</g>'
    picture = parse_svg(svg(*BOXES[:2], own))
    assert [(one.tail, two.tail) for one, two in struck_labels(picture)] == [("a", "a")]
    beside = own.replace('x="120"', 'x="160"')
    assert struck_labels(parse_svg(svg(*BOXES[:2], beside))) == []


def test_a_plaintext_node_is_boxed_by_its_text():
    title = (
        '<g class="node"><title>b/title</title>'
        '<text text-anchor="middle" x="100" y="50" font-size="10">abcd</text></g>'
    )
    box = parse_svg(svg(title)).nodes["b/title"]
    assert box.x0 < 100 < box.x1 and box.y0 < 50 < box.y1 and 15 < box.x1 - box.x0 < 30


def test_an_invisible_edge_or_node_is_not_read():
    hidden = "<!-- a->b --><!-- c -->"
    picture = parse_svg(svg(*BOXES[:2], hidden))
    assert set(picture.nodes) == {"a", "b"} and picture.edges == ()


def _bench() -> ModuleType:
    """bench/diagram_geometry.py as a module (registered: its dataclasses look themselves up)."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))  # where the script finds benchlib
    if "diagram_geometry" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "diagram_geometry", ROOT / "bench" / "diagram_geometry.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["diagram_geometry"] = module
        spec.loader.exec_module(module)
    return sys.modules["diagram_geometry"]


def test_a_real_diagram_is_read_whole():
    """googlenet-naive drawn by the embedded Graphviz: every edge Graphviz draws is parsed."""
    bench = _bench()
    case = bench.Case(ROOT / "specs" / "googlenet-naive.yaml", "branches", "auto", "TB", "embedded")
    result = bench.draw(case)
    counts = result.counts
    assert result.dot_edges > 50 and counts.edges == result.dot_edges
    for value in (counts.through_nodes, counts.through_blocks, counts.blocks_crossed, counts.crossings):
        assert isinstance(value, int) and value >= 0
    assert counts.blocks_crossed >= counts.through_blocks
    assert counts.width_px > 500 and counts.height_px > 500 and not math.isnan(counts.min_font_px)


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_no_edge_passes_through_a_node_or_a_foreign_block(spec):
    """Issue 27's measure over every shipped spec × detail × layout (and left to right): the
    default pictures had 101 (edge, block) pairs through foreign blocks in 15 of 18 specs,
    271 crossings and 598 labels an edge ran through; now none of these anywhere."""
    bench = _bench()
    cases = [bench.Case(spec, detail, layout, "TB", "embedded") for detail in DETAILS for layout in LAYOUTS]
    cases += [bench.Case(spec, detail, "tall", "LR", "embedded") for detail in DETAILS]
    for case in cases:
        counts = bench.draw(case).counts
        where = (case.detail, case.view)
        faults = (counts.through_nodes, counts.through_blocks, counts.crossings, counts.struck_labels)
        assert faults == (0, 0, 0, 0), where
