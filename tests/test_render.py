"""Diagrams: DOT structure against the spec, determinism, engines, formats, atomic output."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import archbuilder
from archbuilder.cli.render import default_output
from archbuilder.render import RenderError, UnsupportedFormat, diagram, render_diagram

from .conftest import GOOGLENET, ROOT

EDGE = re.compile(r'^\s*("[^"]+"|\S+) -> ("[^"]+"|\S+)(.*)$', re.MULTILINE)
has_dot = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not has_dot, reason="system Graphviz (dot) is not installed")

NESTED = """
name: nested
input: {channels: 3, height: 8, width: 8}
num_classes: 2
blocks:
  - name: outer
    kind: branches
    branches:
      - name: left
        layers:
          - {kind: conv, out: 4, kernel: 3, padding: 1}
          - name: inner
            kind: branches
            branches:
              - {name: a, layers: [{kind: conv, out: 2, kernel: [1, 3], padding: [0, 1]}]}
              - {name: b, layers: [{kind: conv, out: 2, kernel: [3, 1], padding: [1, 0]}]}
      - {name: right, layers: [{kind: avgpool, kernel: 3, stride: 1, padding: 1}]}
head: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]
"""


def edges(source: str) -> list[tuple[str, str, str]]:
    return [(a.strip('"'), b.strip('"'), attrs) for a, b, attrs in EDGE.findall(source)]


def data_edges(source: str) -> list[tuple[str, str, str]]:
    """Edges that stand for tensors: not the legend's or the columns' layout edges, not the
    output marker; an edge into a box's title node and on from it counts as one edge."""
    found = [e for e in edges(source) if not e[0].startswith(("legend_", "column_")) and e[1] != "output"]
    # a tensor leaving its column at connector X/out arrives at X/in at the top of the next
    leaving = {b.removesuffix("/out"): (a, attrs) for a, b, attrs in found if b.endswith("/out")}
    found = [
        (leaving[a.removesuffix("/in")][0], b, attrs) if a.endswith("/in") else (a, b, attrs)
        for a, b, attrs in found
        if not b.endswith("/out")
    ]
    into = {}
    for a, b, attrs in found:
        if b.endswith("/title"):
            into.setdefault(b, []).append((a, attrs))
    result = []
    for a, b, attrs in found:
        if b.endswith("/title"):
            continue
        sources = [(a, attrs)]
        while sources[0][0].endswith("/title"):  # back through nested titles to the real source
            sources = [(x, attrs0) for title, _ in sources for x, attrs0 in into[title]]
        result += [(x, b, attrs0 if x != a else attrs) for x, attrs0 in sources]
    return result


@pytest.fixture(scope="module")
def spec():
    return archbuilder.load_spec(GOOGLENET)


@pytest.fixture(scope="module")
def branches_source(spec):
    return diagram(spec).source


def test_a_cluster_per_inception_block_with_four_branches(spec, branches_source):
    inception = [layer.name for layer in spec.blocks if layer.kind == "inception"]
    assert len(inception) == 9
    all_edges = data_edges(branches_source)
    for name in inception:
        assert f"subgraph cluster_{name} {{" in branches_source
        # four branches leave the block input and four arrive at the concat
        into_block = [e for e in all_edges if e[1].startswith(f"{name}.") and not e[0].startswith(f"{name}.")]
        into_concat = [e for e in all_edges if e[1] == f"{name}.concat"]
        assert len(into_block) == 4 and len(into_concat) == 4, name
        firsts = {e[1] for e in into_block}
        assert firsts == {
            f"{name}.branch1x1.conv",
            f"{name}.branch3x3.reduce",
            f"{name}.branch5x5.reduce",
            f"{name}.branch_pool.pool",
        }


def test_one_edge_per_data_dependency(spec, branches_source):
    ir = archbuilder.lower(spec)
    assert sorted((a, b) for a, b, _ in data_edges(branches_source)) == sorted(ir.graph.edges())


def test_aux_heads_hang_off_their_taps(branches_source):
    for head, tap in (("aux1", "4a"), ("aux2", "4d")):
        assert f"subgraph cluster_aux_{head} {{" in branches_source
        assert "loss weight 0.3" in branches_source
        tap_edges = [
            e for e in data_edges(branches_source) if e[0] == f"{tap}.concat" and e[1].startswith(f"{head}.")
        ]
        assert len(tap_edges) == 1 and "dashed" in tap_edges[0][2]


def test_title_names_the_model_and_its_size(branches_source):
    assert "googlenet" in branches_source
    assert "13,393,352 params" in branches_source and "1.58 G MACs" in branches_source


def test_blocks_detail_has_one_node_per_top_level_entry(spec):
    source = diagram(spec, detail="blocks").source
    chain = [(a, b) for a, b, attrs in data_edges(source) if "dashed" not in attrs]
    expected = ["input", *(layer.name for layer in (*spec.stem, *spec.blocks, *spec.head))]
    assert chain == list(itertools.pairwise(expected))
    assert [(a, b) for a, b, attrs in data_edges(source) if "dashed" in attrs] == [
        ("4a", "aux1"),
        ("4d", "aux2"),
    ]


def test_layers_detail_draws_batch_norm_and_activation(spec):
    source = diagram(spec, detail="layers").source
    convs = [op for op in archbuilder.lower(spec).ops() if op.kind == "conv"]
    assert len(convs) == 2 + 1 + 9 * 6 + 2  # stem, inception blocks, aux heads
    for op in convs:
        assert (op.id, f"{op.id}/bn") in {(a, b) for a, b, _ in edges(source)}
        assert (f"{op.id}/bn", f"{op.id}/act") in {(a, b) for a, b, _ in edges(source)}


def test_shapes_on_edges_can_be_turned_off(spec):
    assert 'label="256×28×28"' in diagram(spec).source
    assert "×28×28" not in "".join(attrs for *_, attrs in edges(diagram(spec, shapes=False).source))


def test_rankdir(spec):
    assert "rankdir=LR" in diagram(spec, rankdir="LR").source
    with pytest.raises(ValueError, match="rankdir"):
        diagram(spec, rankdir="BT")
    with pytest.raises(ValueError, match="detail"):
        diagram(spec, detail="everything")


def test_nested_branches_are_nested_clusters():
    source = diagram(NESTED).source
    outer = source.index("subgraph cluster_outer {")
    inner = source.index('subgraph "cluster_outer.left.inner" {')
    assert outer < inner
    depth = source[outer:inner].count("{") - source[outer:inner].count("}")
    assert depth >= 1  # the inner cluster opens before the outer one closes


def test_output_is_deterministic(spec, tmp_path):
    assert diagram(spec).source == diagram(archbuilder.load_spec(GOOGLENET)).source
    first = render_diagram(spec, tmp_path / "a.svg", engine="embedded").read_bytes()
    second = render_diagram(spec, tmp_path / "b.svg", engine="embedded").read_bytes()
    assert first == second


def test_svg_renders_without_system_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    output = render_diagram(GOOGLENET, tmp_path / "googlenet.svg")
    text = output.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "3a · Inception" in text
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render_diagram(GOOGLENET, tmp_path / "googlenet.png", engine="system")


@needs_dot
@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF-"), (".svg", b"<?xml")]
)
def test_system_graphviz_formats(tmp_path, suffix, magic):
    output = render_diagram(GOOGLENET, tmp_path / f"g{suffix}", engine="system")
    assert output.read_bytes().startswith(magic)


def test_diagram_shows_inline_without_system_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    bundle = diagram(GOOGLENET, detail="blocks")._repr_mimebundle_()
    assert bundle["image/svg+xml"].count("<svg") == 1


def test_dot_output_needs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    output = render_diagram(GOOGLENET, tmp_path / "g.dot")
    assert output.read_text() == diagram(GOOGLENET).source


def test_unsupported_extension(tmp_path):
    with pytest.raises(UnsupportedFormat, match=r"unsupported extension '\.jpg'; use one of \.svg"):
        render_diagram(GOOGLENET, tmp_path / "g.jpg")


def test_failed_render_leaves_an_existing_file_intact(tmp_path, monkeypatch):
    existing = tmp_path / "g.png"
    existing.write_bytes(b"old picture")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError):  # system Graphviz asked for, and there is none
        render_diagram(GOOGLENET, existing, engine="system")
    assert existing.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]  # no temporary file left


def test_diagram_does_not_import_torch():
    code = f"import sys, archbuilder; archbuilder.diagram({str(GOOGLENET)!r}, detail='layers'); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# -- the command -------------------------------------------------------------------


def archbuild(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=cwd
    )


def test_render_command_writes_next_to_the_spec_by_default(tmp_path):
    spec = tmp_path / "googlenet.yaml"
    shutil.copy(GOOGLENET, spec)
    result = archbuild("render", str(spec))
    assert result.returncode == 0, result.stderr
    output = tmp_path / "googlenet.svg"
    assert output.read_text().count("<svg") == 1
    assert output.stat().st_mode & 0o044 == 0o044  # readable by others, like any new file (umask 022)
    assert "wrote" in result.stdout
    # another detail level gets its own name instead of replacing the first diagram
    assert archbuild("render", str(spec), "--detail", "blocks").returncode == 0
    assert (tmp_path / "googlenet-blocks.svg").read_text() != output.read_text()


def test_render_command_writes_a_shipped_specs_diagram_in_the_working_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", "render", "googlenet", "--detail", "layers"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "googlenet-layers.svg").read_text().count("<svg") == 1


def test_render_compare_names_its_default_output_after_both_specs(tmp_path):
    """Issue 25: `render A --compare B` wrote A.svg, silently replacing A's own drawing."""
    spec = tmp_path / "googlenet.yaml"
    shutil.copy(GOOGLENET, spec)
    factorized = tmp_path / "googlenet-factorized.yaml"
    shutil.copy(ROOT / "specs" / "googlenet-factorized.yaml", factorized)
    assert archbuild("render", "googlenet.yaml", cwd=tmp_path).returncode == 0
    plain = (tmp_path / "googlenet.svg").read_bytes()
    result = archbuild("render", "googlenet.yaml", "--compare", "googlenet-factorized.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote googlenet-vs-googlenet-factorized.svg (branches detail)\n"
    compared = (tmp_path / "googlenet-vs-googlenet-factorized.svg").read_text()
    assert compared.count("<svg") == 1 and compared.encode() != plain
    assert (tmp_path / "googlenet.svg").read_bytes() == plain  # A's own drawing untouched
    # shipped names: in the working folder, named after both
    assert default_output("googlenet", "branches", "inception-v3") == Path("googlenet-vs-inception-v3.svg")
    assert default_output(str(spec), "layers", "v1") == tmp_path / "googlenet-vs-v1-layers.svg"


def test_render_command_usage_errors(tmp_path):
    result = archbuild("render", str(GOOGLENET), "-o", str(tmp_path / "g.jpeg"))
    assert (
        result.returncode == 2
        and "unsupported extension" in result.stderr
        and "Traceback" not in result.stderr
    )
    spec = tmp_path / "model.dot"
    shutil.copy(GOOGLENET, spec)
    result = archbuild("render", str(spec), "-o", str(spec))
    assert result.returncode == 2 and "is the input spec" in result.stderr
    assert spec.read_text() == GOOGLENET.read_text()  # the input is never overwritten


def test_render_command_reports_a_bad_spec(tmp_path):
    result = archbuild(
        "render", str(ROOT / "tests" / "data" / "broken" / "bad_tap.yaml"), "-o", str(tmp_path / "x.svg")
    )
    assert result.returncode == 1 and "did you mean '4a'" in result.stderr
    assert not (tmp_path / "x.svg").exists()
