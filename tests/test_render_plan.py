"""The static picture's plan and looks (issue 27): roll-ups, columns cut at stage boundaries,
connectors between columns, aux heads beside their taps, names, colours, compare marks, the
paper theme and the PNG size rule.

Truths: the shipped specs' YAML (repeat counts, strides), parameter counts of the torch
modules archbuilder builds, the SVG Graphviz draws (read by tests/svg_geometry.py), the PNG
files' own headers, and WCAG's relative luminance.
"""

from __future__ import annotations

import re
import shutil
import struct

import pytest
import yaml

import archbuilder
from archbuilder.render import diagram, render_diagram
from archbuilder.render.layout import plan
from archbuilder.render.output import render_source
from archbuilder.render.style import FAMILIES, PAPER_FAMILIES, STATUS_COLOURS

from .conftest import GOOGLENET, SPECS
from .svg_geometry import parse_svg

IRV2 = SPECS / "inception-resnet-v2.yaml"
RESNET = SPECS / "resnet50.yaml"


def lowered(path):
    return archbuilder.lower(archbuilder.load_spec(path))


def test_repeated_blocks_roll_up_with_their_names_and_exact_totals():
    spec = yaml.safe_load(IRV2.read_text())
    repeats = {entry["name"]: entry["repeat"] for entry in spec["blocks"] if entry.get("repeat", 1) > 1}
    runs = {run.first: run for run in plan(lowered(IRV2)).runs if run.count > 1}
    assert runs["block35_1"].count == repeats["block35"] == 10
    assert runs["block17_1"].count == repeats["block17"] == 20
    source = diagram(IRV2).source
    assert "block17 ×20 · Inception-ResNet" in source and "block17_1 … block17_20" in source
    assert '"block17_2.' not in source  # the copies are not drawn again
    model = archbuilder.build(archbuilder.load_spec(IRV2))
    params = sum(p.numel() for name, p in model.named_parameters() if re.match(r"block17_\d+\.", name))
    assert f"{params:,} params" in source  # the roll-up's total is all twenty copies'
    unrolled = diagram(IRV2, unroll=True).source
    assert all(f'"block17_{index}/title"' in unrolled for index in range(1, 21))


def test_only_equal_blocks_roll_up():
    """resnet50: layer1_0 has the projection shortcut, layer1_1 and layer1_2 are equal."""
    runs = [run.names for run in plan(lowered(RESNET)).runs if run.count > 1]
    assert ("layer1_1", "layer1_2") in runs and not any("layer1_0" in names for names in runs)
    # the four dense blocks of densenet121 each draw as one (input widths differ, structure not)
    dense = [run for run in plan(lowered(SPECS / "densenet121.yaml")).runs if run.count > 1]
    counts = [
        e["repeat"]
        for e in yaml.safe_load((SPECS / "densenet121.yaml").read_text())["blocks"]
        if "repeat" in e
    ]
    assert [run.count for run in dense] == counts and not any(run.identical for run in dense)
    assert "shapes inside: denseblock1_1's" in diagram(SPECS / "densenet121.yaml").source


def test_columns_start_where_a_stage_starts():
    """resnet50's columns are cut where a stride-2 stage begins (layer2_0, layer3_0, …)."""
    ir = lowered(RESNET)
    layout = plan(ir)
    firsts = [run.first for run in layout.runs if run.first != layout.runs[0].first]
    cuts = [name for name in firsts if layout.column[name] != layout.column[_before(layout, name)]]
    strided = {f"{entry['name']}_0" for entry in yaml.safe_load(RESNET.read_text())["blocks"]}
    assert layout.columns > 1 and cuts and set(cuts) <= strided


def _before(layout, name):
    names = [run.first for run in layout.runs]
    return names[names.index(name) - 1]


def test_a_tensor_leaves_one_column_and_enters_the_next_at_one_letter():
    source = diagram(GOOGLENET).source
    layout = plan(lowered(GOOGLENET))
    assert layout.columns == 2 and [route.letter for route in layout.routes] == ["A"]
    assert source.count('"A/out"') == 2 and source.count('"A/in"') >= 2  # declared, and used
    assert re.search(r'"4b\.concat" -> "A/out" \[label="512×14×14"\]', source)


ENGINES = ["embedded", *(["system"] if shutil.which("dot") else [])]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("detail", ["blocks", "branches"])
def test_aux_heads_hang_level_with_their_taps_all_on_one_side(detail, engine):
    """GoogLeNet's aux1 and aux2 (taps 4a, 4d in the YAML) sit beside their taps, on the
    same side; before, aux1 hung left of the chain and aux2 right."""
    taps = {head["name"]: head["tap"] for head in yaml.safe_load(GOOGLENET.read_text())["aux_heads"]}
    ir = lowered(GOOGLENET)
    picture = parse_svg(render_source(diagram(ir, detail=detail).source, "svg", engine=engine))
    sides = set()
    for head, tap in taps.items():
        tap_box = picture.nodes[tap if detail == "blocks" else f"{tap}.concat"]
        head_box = picture.nodes[head if detail == "blocks" else f"{head}/title"]
        assert head_box.x0 > tap_box.x1 or head_box.x1 < tap_box.x0  # beside, not under
        sides.add(head_box.x0 > tap_box.x1)
        assert abs((head_box.y0 + head_box.y1) - (tap_box.y0 + tap_box.y1)) / 2 < 40  # level with it
    assert len(sides) == 1


def test_blocks_are_titled_by_what_they_are_and_nodes_never_by_a_bare_number():
    titles = {
        "resnet50": "layer1_0 · bottleneck",
        "densenet121": "denseblock1 ×6 · dense layer",
        "efficientnet-b0": "features_1 · inverted residual",
        "inception-v3": "Mixed_5b · Inception",
        "shufflenet-v2-x1-0": "stage2_down · shuffle unit",
    }
    for name, title in titles.items():
        assert title in diagram(SPECS / f"{name}.yaml").source, name
    for path in sorted(SPECS.glob("*.yaml")):
        labels = re.findall(r'label="\{\xa0*([^|\xa0]*)\xa0*\|', diagram(path, detail="layers").source)
        assert not [label for label in labels if re.fullmatch(r"[\d_]+", label)], path.stem


def test_a_concat_of_one_branch_is_not_drawn():
    """efficientnet-b0's features_1 has no shortcut: its one branch's output goes on as it is."""
    ir = lowered(SPECS / "efficientnet-b0.yaml")
    merge = next(item.merge for item in ir.body.items if getattr(item, "id", "") == "features_1")
    assert ir.op(merge).kind == "concat" and ir.graph.in_degree(merge) == 1
    source = diagram(ir).source
    assert f'"{merge}"' not in source
    assert "concat" not in _cluster(source, "features_1")


def _cluster(source: str, name: str) -> str:
    start = source.index(f"subgraph cluster_{name} {{")
    return source[start : source.index("\n\t\t}", start)]


def test_squeeze_excite_layer_scale_shuffle_and_drop_path_have_their_own_keys():
    keys = {
        "efficientnet-b0": "squeeze-excite",
        "convnext-tiny": "layer scale",
    }
    for name, key in keys.items():
        legend = diagram(SPECS / f"{name}.yaml").source.split("cluster_legend")[1]
        assert f"label={key}" in legend or f'label="{key}"' in legend, name
    names = {family.name for family in FAMILIES.values()}
    assert {"drop path", "channel shuffle", "squeeze-excite", "layer scale"} <= names


def _luminance(colour: str) -> float:
    channels = [int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("families", [FAMILIES, PAPER_FAMILIES], ids=["default", "paper"])
def test_block_conv_pool_merge_and_aux_fills_differ_in_greyscale(families):
    fills = {key: _luminance(families[key].fill) for key in ("block", "aux", "conv", "pool", "merge")}
    for one, two in ((a, b) for a in fills for b in fills if a < b):
        high, low = max(fills[one], fills[two]), min(fills[one], fills[two])
        assert (high + 0.05) / (low + 0.05) >= 1.15, (one, two)  # WCAG contrast ratio
    assert all((fill + 0.05) / 0.05 >= 7 for fill in fills.values())  # black text stays readable


def test_compare_marks_the_changed_ops_and_names_the_other_spec():
    new = SPECS / "googlenet-factorized.yaml"
    source = diagram_compare(new)
    assert "compared with googlenet" in source
    # the YAML's factorization: each 5×5 conv becomes two 3×3s — one changed, one added
    blocks = [b["name"] for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["kind"] == "inception"]
    for block in blocks:
        changed = re.search(rf'"{block}\.branch5x5\.conv" \[label="([^"]*)"[^\]]* color="([^"]+)"', source)
        assert changed and "kernel 5×5 → 3×3" in changed[1] and changed[2] == STATUS_COLOURS["changed"]
        added = re.search(
            rf'"{block}\.branch5x5\.conv2" \[label="[^"]*added[^"]*"[^\]]* color="([^"]+)"', source
        )
        assert added and added[1] == STATUS_COLOURS["added"]
    used = {family.line for family in FAMILIES.values()} | {family.fill for family in FAMILIES.values()}
    assert not used & {STATUS_COLOURS["changed"], STATUS_COLOURS["added"]}


def diagram_compare(new) -> str:
    from archbuilder.render.compare import compare_marks
    from archbuilder.render.graph import to_digraph

    spec = archbuilder.load_spec(new)
    return to_digraph(archbuilder.lower(spec), marks=compare_marks(GOOGLENET, spec)).source


def test_the_paper_theme_is_grey_serif_and_white(tmp_path):
    svg = render_diagram(GOOGLENET, tmp_path / "g.svg", theme="paper", engine="embedded").read_text()
    assert 'font-family="Times' in svg and "Helvetica" not in svg
    fills = set(re.findall(r'fill="(#[0-9a-f]{6})"', svg)) - {"#ffffff"}
    assert fills and all(colour[1:3] == colour[3:5] == colour[5:7] for colour in fills)  # greys
    assert 'fill="white"' in svg.split('<g id="graph0"')[1][:600]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_default_png_fits_2400_px_with_text_of_9_px_or_more(path, tmp_path):
    png = render_diagram(path, tmp_path / "d.png", engine="embedded").read_bytes()
    width, height = _png_size(png)
    assert max(width, height) <= 2400
    svg = render_source(diagram(path).source, "svg", engine="embedded")
    picture = parse_svg(svg)
    smallest_px = picture.min_font_px * width / picture.width_px  # the PNG's pixels per CSS pixel
    assert smallest_px >= 9, (width, height, smallest_px)


def test_a_png_can_be_sized_for_a_slide(tmp_path):
    png = render_diagram(GOOGLENET, tmp_path / "g.png", width=1280, engine="embedded").read_bytes()
    assert _png_size(png)[0] in (1279, 1280, 1281)
    with pytest.raises(ValueError, match="not both"):
        render_diagram(GOOGLENET, tmp_path / "h.png", width=1280, dpi=100)
