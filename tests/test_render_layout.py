"""Static diagrams: page shape, titles kept clear of edges, the legend, compare marks."""

from __future__ import annotations

import re

import pytest
import yaml

from archbuilder.ir import load_spec, lower
from archbuilder.render import diagram, render_diagram
from archbuilder.render.graph import to_digraph

from .conftest import GOOGLENET, ROOT, SPECS

EDGE = re.compile(r'^\s*("[^"]+"|\S+) -> ("[^"]+"|\S+)', re.MULTILINE)


def svg_size(path) -> tuple[float, float]:
    width, height = re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', path.read_text()[:4000]).groups()
    return float(width), float(height)


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_default_diagrams_stay_within_one_to_three(spec):
    for suffix in ("", "-blocks"):  # the files docs/ shows, drawn by the embedded Graphviz
        width, height = svg_size(ROOT / "docs" / "diagrams" / f"{spec.stem}{suffix}.svg")
        assert max(width, height) / min(width, height) <= 3, (spec.stem, suffix, width, height)


def test_compact_wraps_googlenet_into_a_landscape_page(tmp_path):
    svg = render_diagram(GOOGLENET, tmp_path / "g.svg", layout="compact", engine="embedded")
    width, height = svg_size(svg)
    assert width > height  # fits a 16:9 page far better than one 1:8 column
    tall = render_diagram(GOOGLENET, tmp_path / "t.svg", layout="tall", engine="embedded")
    assert svg_size(tall)[1] / svg_size(tall)[0] > 2.5  # what auto and compact avoid


def test_edges_enter_blocks_through_their_title_node_not_across_it():
    source = diagram(GOOGLENET).source
    targets = [b.strip('"') for _, b in EDGE.findall(source)]
    for name in ("3a", "4a", "5b"):
        assert f'"{name}/title"' in source
        # nothing outside the block points at its branches: only its title does
        into = [(a.strip('"'), b.strip('"')) for a, b in EDGE.findall(source)]
        crossing = [(a, b) for a, b in into if b.startswith(f"{name}.") and not a.startswith(f"{name}")]
        assert crossing == []
    assert targets.count("aux1/title") == 1  # the tap edge ends at the aux head's title


def test_legend_is_one_row():
    source = diagram(GOOGLENET).source
    legend = source[source.index("subgraph cluster_legend") :]
    assert legend.count("rank=same") == 1
    assert "legend_0" in legend and "legend_9" in legend


def test_compare_outlines_exactly_the_changed_blocks():
    new = load_spec(SPECS / "googlenet-factorized.yaml")
    from archbuilder.render.compare import compare_marks

    source = to_digraph(lower(new), detail="blocks", marks=compare_marks(GOOGLENET, new)).source
    marked = re.findall(r'^\s*"?([\w.]+)"? \[label=[^\]]*penwidth=3', source, re.MULTILINE)
    inception = [
        b["name"] for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["kind"] == "inception"
    ]
    assert sorted(marked) == sorted(inception)
    assert "legend" in source and "changed" in source


def test_compare_lists_removed_entries_in_the_legend(tmp_path):
    dot = render_diagram(GOOGLENET, tmp_path / "c.dot", compare=SPECS / "googlenet-v1-original.yaml")
    text = dot.read_text()
    assert (
        "removed: norm1, norm2" in text and "added" not in text.split("cluster_legend")[1].split("removed")[0]
    )


def test_compare_at_branches_detail_marks_stem_layers_and_blocks():
    new = load_spec(SPECS / "googlenet-v1-original.yaml")
    from archbuilder.render.compare import STATUS_COLOURS, compare_marks

    source = to_digraph(lower(new), marks=compare_marks(GOOGLENET, new)).source
    for name, status in (("norm1", "added"), ("pool1", "changed"), ("conv1", "affected")):
        line = next(line for line in source.splitlines() if line.strip().startswith(f"{name} [label="))
        assert STATUS_COLOURS[status] in line and "penwidth=3" in line
    assert re.search(r"subgraph cluster_4a \{\n[^\n]*penwidth=3", source)


def test_shapes_into_a_merge_sit_beside_each_branch_clear_of_every_edge():
    """The four shapes going into 4a's concat (from the YAML's widths) are each beside their
    own edge: no edge runs through one, and no two overlap where the branches meet."""
    from archbuilder.render.output import render_source

    from .svg_geometry import parse_svg, struck_labels

    four_a = next(b for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["name"] == "4a")
    picture = parse_svg(render_source(diagram(GOOGLENET, detail="layers").source, "svg", engine="embedded"))
    into = [edge for edge in picture.edges if edge.head == "4a.concat"]
    assert len(into) == 4 and all(len(edge.labels) == 1 for edge in into)
    assert struck_labels(picture) == []
    boxes = [edge.labels[0] for edge in into]
    assert not any(one.overlaps(two) for index, one in enumerate(boxes) for two in boxes[index + 1 :])
    source = diagram(GOOGLENET, detail="layers").source
    widths = [four_a[key] for key in ("ch1x1", "ch3x3", "ch5x5", "pool_proj")]
    assert all(f'label="{width}×14×14"' in source for width in widths)
