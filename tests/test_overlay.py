"""Overlays (``--color-by``) and the profile reader, without torch.

Truths: the IR's own op shapes, parameters and MACs; a profile written here by hand from the
IR's ids (what ``archbuild profile`` writes, minus the measuring); the SVG Graphviz draws (each
node's and cluster's fill read back); the text headless Chromium shows in the inspector.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from math import prod

import pytest

import archbuilder
from archbuilder.analysis.overlay import (
    MAX_PROFILE_BYTES,
    NO_VALUE,
    VIRIDIS,
    OverlayError,
    ProfileData,
    colour_at,
    overlay_for,
    read_profile,
    spec_digest,
)
from archbuilder.render import render_diagram
from archbuilder.render.page import page_model

from .conftest import GOOGLENET, ROOT, SPECS
from .test_interactive import browser, click, needs_browser, open_page, panel  # noqa: F401 (a fixture)

DIGITS = SPECS / "inception-digits.yaml"


def loaded(path=GOOGLENET):
    spec = archbuilder.load_spec(path)
    return spec, archbuilder.lower(spec)


def fake_profile(spec, ir) -> dict:
    """A profile as archbuild profile writes it: every top-level entry and op timed (1 ms per
    op, a block the sum of its ops), end to end the sum of the blocks."""
    layers = {op.id: 1.0 for op in ir.ops() if op.kind != "input"}
    blocks = {top.name: float(len(top.ops)) for top in ir.top_level}
    data = ProfileData(
        spec.name,
        spec_digest(spec),
        {"cpu": "Test CPU", "cores": 2, "torch_threads": 2, "python": "3.11", "torch": "2.0"},
        1,
        "fp32",
        "eval",
        3,
        sum(blocks.values()),
        0.0,
        blocks,
        layers,
    )
    return data.to_dict()


def write(tmp_path, data, name="prof.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_profile_round_trips_through_its_json(tmp_path):
    spec, ir = loaded()
    data = fake_profile(spec, ir)
    read = read_profile(write(tmp_path, data), spec, ir)
    assert read.to_dict() == data
    assert read.blocks["3a"] == len(next(top for top in ir.top_level if top.name == "3a").ops)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(batch="1"), "batch must be an integer"),
        (lambda d: d.update(end_to_end_ms=-1), "end_to_end_ms must be a number"),
        (lambda d: d["blocks"].update({"3a": "fast"}), 'blocks."3a" must be a number'),
        (lambda d: d["blocks"].update({"3a": True}), "must be a number"),
        (lambda d: d["layers"].update({"nowhere.conv": 1.0}), 'ids this spec does not have: "nowhere.conv"'),
        (lambda d: d.update(extra=1), 'unexpected keys "extra"'),
        (lambda d: d.update(version=2), "format version 2"),
        (lambda d: d["machine"].update(cpu=["x"]), "machine.cpu must be a short string"),
        (lambda d: d["spec"].update(sha256="0" * 64), "not of this spec"),
    ],
)
def test_the_reader_refuses_a_malformed_profile_in_one_line(tmp_path, change, message):
    spec, ir = loaded()
    data = fake_profile(spec, ir)
    change(data)
    with pytest.raises(OverlayError) as caught:
        read_profile(write(tmp_path, data), spec, ir)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_reader_refuses_nan_and_a_file_over_its_size_limit(tmp_path):
    spec, ir = loaded()
    text = json.dumps(fake_profile(spec, ir)).replace('"end_to_end_ms": ', '"end_to_end_ms": NaN, "x": ', 1)
    with pytest.raises(OverlayError, match="not JSON: NaN is not a number"):
        read_profile(write(tmp_path, text), spec, ir)
    with pytest.raises(OverlayError, match="over 4 MiB"):
        read_profile(write(tmp_path, " " * (MAX_PROFILE_BYTES + 1)), spec, ir)


def test_another_specs_profile_is_refused_naming_both(tmp_path):
    spec, ir = loaded()
    other, other_ir = loaded(DIGITS)
    path = write(tmp_path, fake_profile(other, other_ir))
    with pytest.raises(
        OverlayError, match='a profile of "inception-digits", not of this spec \\("googlenet"'
    ):
        read_profile(path, spec, ir)
    edited = archbuilder.load_spec(GOOGLENET, overrides=["num_classes=10"])
    with pytest.raises(OverlayError, match="not of this spec"):
        read_profile(write(tmp_path, fake_profile(spec, ir)), edited, archbuilder.lower(edited))


def test_markup_in_a_profile_never_reaches_the_picture_or_the_page(tmp_path):
    spec, ir = loaded()
    data = fake_profile(spec, ir)
    data["machine"]["cpu"] = "<script>alert(1)</script>"
    path = write(tmp_path, data)
    profile = read_profile(path, spec, ir)  # text is allowed in the machine's name: it is only shown
    overlay = overlay_for(ir, "latency", profile)
    page = render_diagram(GOOGLENET, tmp_path / "g.html", overlay=overlay).read_text()
    svg = render_diagram(GOOGLENET, tmp_path / "g.svg", overlay=overlay).read_text()
    assert "<script>alert" not in page and "alert(1)" not in svg
    # a name that is markup is not an id of the spec: refused, and said as quoted text
    data["layers"]["<b>x</b>"] = 1.0
    with pytest.raises(OverlayError, match=r'"<b>x</b>"'):
        read_profile(write(tmp_path, data), spec, ir)


def test_metric_values_follow_the_ir():
    ir = loaded()[1]
    four_a = next(top for top in ir.top_level if top.name == "4a")
    ops = [ir.op(op_id) for op_id in four_a.ops]
    assert overlay_for(ir, "params").values["4a"] == sum(op.params for op in ops)
    assert overlay_for(ir, "macs").values["4a.branch3x3.conv"] == ir.op("4a.branch3x3.conv").macs
    assert overlay_for(ir, "activations").values["4a"] == sum(prod(op.shape) * 4 for op in ops)
    macs = overlay_for(ir, "macs")
    assert macs.log and macs.total == ir.total(aux=False)[1]  # 0.6 M to 347 M MACs: a log scale


def test_the_scale_runs_low_to_high_along_viridis():
    assert colour_at(0.0) == VIRIDIS[0] and colour_at(1.0) == VIRIDIS[-1]
    ir = loaded()[1]
    overlay = overlay_for(ir, "macs")
    assert overlay.fill(overlay.low) == VIRIDIS[0] and overlay.fill(overlay.high) == VIRIDIS[-1]
    assert overlay.fill(None) == NO_VALUE


def _fills(svg: str) -> dict[str, str]:
    """Each node's and cluster's id (its <title>) -> the fill of its first shape."""
    found = {}
    for group in re.finditer(r'<g id="(?:node|clust)\d+" class="(?:node|cluster)">(.*?)</g>', svg, re.S):
        title = re.search(r"<title>(.*?)</title>", group.group(1), re.S)
        fill = re.search(r'<(?:path|polygon)[^>]*fill="([^"]+)"', group.group(1))
        if title and fill:
            found[title.group(1)] = fill.group(1)
    return found


def test_the_static_overlay_colours_every_block_and_op_and_draws_a_colour_bar(tmp_path):
    ir = loaded()[1]
    overlay = overlay_for(ir, "macs")
    svg = render_diagram(GOOGLENET, tmp_path / "g.svg", overlay=overlay).read_text()
    fills = _fills(svg)
    for op in ir.ops():
        if op.kind not in ("input", "concat"):  # a concat of 4 branches is drawn; its 0 MACs too
            assert fills[op.id] == overlay.fill(overlay.values[op.id]), op.id
    for block in ("3a", "4e", "5b"):
        assert fills[f"cluster_{block}"] == overlay.fill(overlay.values[block]), block
    assert "coloured by macs (MACs, log scale)" in svg
    bar = [fills[f"overlay_{index}"] for index in range(5)]
    assert bar[0] == VIRIDIS[0] and bar[-1] == VIRIDIS[-1]
    assert "cluster_legend" not in fills  # the colour bar replaces the families' key
    assert "347 M MACs · 21.9%" in svg.replace("&#183;", "·")  # conv2: its MACs and share


def test_blocks_detail_colours_each_entry_and_the_default_drawing_is_unchanged(tmp_path):
    ir = loaded()[1]
    overlay = overlay_for(ir, "params")
    fills = _fills(
        render_diagram(GOOGLENET, tmp_path / "b.svg", detail="blocks", overlay=overlay).read_text()
    )
    for top in ir.top_level:
        assert fills[top.name] == overlay.fill(overlay.values[top.name]), top.name
    plain = render_diagram(GOOGLENET, tmp_path / "p.svg").read_bytes()
    assert plain == render_diagram(GOOGLENET, tmp_path / "q.svg", overlay=None).read_bytes()
    assert b"coloured by" not in plain


def test_the_page_model_carries_each_nodes_value_share_and_fill():
    spec, ir = loaded()
    overlay = overlay_for(ir, "macs")
    model = page_model(ir, spec, overlay=overlay)
    assert model["overlay"]["caption"] == "coloured by macs (MACs, log scale)"
    nodes = {node["id"]: node for node in model["body"]}
    conv2 = nodes["conv2"]["overlay"]
    assert conv2["value"] == ir.op("conv2").macs and conv2["fill"] == overlay.fill(conv2["value"])
    assert conv2["share"] == f"{ir.op('conv2').macs / ir.total(aux=False)[1]:.2%}"
    branch = nodes["4a"]["children"][1]  # branch3x3: the sum of its two convs
    assert branch["overlay"]["value"] == ir.op("4a.branch3x3.reduce").macs + ir.op("4a.branch3x3.conv").macs
    assert "overlay" not in page_model(ir, spec)


def test_render_cli_needs_a_profile_for_latency_and_refuses_another_specs(tmp_path):
    spec, ir = loaded(DIGITS)
    path = write(tmp_path, fake_profile(spec, ir))

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "archbuilder", "render", *args], capture_output=True, text=True, cwd=ROOT
        )

    missing = run(str(GOOGLENET), "--color-by", "latency", "-o", str(tmp_path / "x.svg"))
    assert missing.returncode == 2 and "--color-by latency needs --overlay" in missing.stderr
    other = run(str(GOOGLENET), "--overlay", str(path), "-o", str(tmp_path / "x.svg"))
    assert other.returncode == 1 and "not of this spec" in other.stderr
    assert other.stderr.count("\n") == 1 and str(tmp_path) not in other.stderr
    done = run(str(DIGITS), "--overlay", str(path), "-o", str(tmp_path / "d.svg"))
    assert done.returncode == 0, done.stderr
    assert "coloured by latency (ms" in (tmp_path / "d.svg").read_text()


@needs_browser
def test_the_inspector_shows_a_nodes_overlay_value_and_share(browser, tmp_path):  # noqa: F811
    ir = loaded()[1]
    overlay = overlay_for(ir, "macs")
    open_page(browser, tmp_path, GOOGLENET, overlay=overlay)
    click(browser, "conv2")
    facts = panel(browser)
    assert facts["macs"] == "347 M MACs"
    assert facts["share of macs"] == f"{ir.op('conv2').macs / ir.total(aux=False)[1]:.2%}"
    legend = browser.execute_script("return document.getElementById('legend').textContent")
    assert "coloured by macs (MACs, log scale)" in legend and "no value" in legend


def test_serve_builds_the_page_with_the_overlay_and_says_when_the_profile_is_stale(tmp_path):
    from archbuilder.serve.build import BuildRequest, build_page

    spec, ir = loaded(DIGITS)
    path = write(tmp_path, fake_profile(spec, ir))
    built = build_page(BuildRequest(str(DIGITS), color_by="latency", overlay=str(path)))
    assert built.problems == [] and built.model["overlay"]["metric"] == "latency"
    assert built.model["body"][1]["overlay"]["value"] == fake_profile(spec, ir)["blocks"]["conv1"]
    edited = build_page(
        BuildRequest(str(DIGITS), overrides=("num_classes=7",), color_by="latency", overlay=str(path))
    )
    assert edited.model is None and "not of this spec" in edited.problems[0]["message"]
