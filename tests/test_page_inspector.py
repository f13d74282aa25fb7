"""What the interactive page's nodes say: summaries of parallel branches, attributes as a person
writes them, and the YAML key a layer's width comes from.

Truths: the shipped specs' own YAML (widths and kernels read with yaml.safe_load), and the text
headless Chromium shows in the inspector panel.
"""

from __future__ import annotations

import pytest
import yaml

import archbuilder
from archbuilder.render.page import page_model

from .conftest import GOOGLENET, SPECS
from .test_interactive import browser, click, needs_browser, open_page, panel  # noqa: F401 (a fixture)


def nodes(spec_path) -> dict[str, dict]:
    spec = archbuilder.load_spec(spec_path)
    model = page_model(archbuilder.lower(spec), spec)

    def walk(node):
        yield node
        for child in node.get("children", []):
            yield from walk(child)
        if "merge" in node:
            yield from walk(node["merge"])

    return {node["id"]: node for top in model["body"] + model["aux"] for node in walk(top)}


def conv(layer: dict) -> str:
    kernel = layer["kernel"]
    kernel = f"{kernel}×{kernel}" if isinstance(kernel, int) else "×".join(map(str, kernel))
    return f"conv {kernel} → {layer['out']}"


def test_a_residual_inception_block_summarizes_its_branches_as_parallel():
    spec = yaml.safe_load((SPECS / "inception-resnet-v2.yaml").read_text())
    residual = spec["templates"]["block35"]["layer"]["branches"][1]["layers"]
    mixed, projection = residual
    chains = [" → ".join(conv(layer) for layer in branch["layers"]) for branch in mixed["branches"]]
    expected = "(" + " | ".join(chains) + ") → concat → " + conv(projection)
    shown = nodes(SPECS / "inception-resnet-v2.yaml")
    assert shown["block35_1.residual"]["label"] == expected
    assert shown["block35_1"]["label"] == f"2 branches: (identity | {expected}) → add"
    # the three parallel 1×1 convs are never read one after another
    assert "conv 1×1 → 32 → conv 1×1" not in shown["block35_1"]["label"]


def test_an_inception_block_summary_has_its_four_branches():
    four_a = next(b for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["name"] == "4a")
    branches = [
        f"conv 1×1 → {four_a['ch1x1']}",
        f"conv 1×1 → {four_a['ch3x3red']} → conv 3×3 → {four_a['ch3x3']}",
        f"conv 1×1 → {four_a['ch5x5red']} → conv 5×5 → {four_a['ch5x5']}",
        f"maxpool 3×3 → conv 1×1 → {four_a['pool_proj']}",
    ]
    assert nodes(GOOGLENET)["4a"]["label"] == "4 branches: (" + " | ".join(branches) + ") → concat"


def test_a_plain_chain_still_reads_as_a_chain():
    spec = yaml.safe_load((SPECS / "resnet50.yaml").read_text())
    layer1_0 = next(b for b in spec["blocks"] if b["name"] == "layer1_0")["with"]
    main = spec["templates"]["bottleneck"]["layer"]["branches"][0]["layers"]
    written = [{**layer, "out": layer1_0[layer["out"][1:]]} for layer in main]  # $width, $out
    assert nodes(SPECS / "resnet50.yaml")["layer1_0.main"]["label"] == " → ".join(map(conv, written))


def inspect_4a(driver, tmp_path, node_id: str) -> None:
    open_page(driver, tmp_path, GOOGLENET)
    click(driver, "4a")
    branch = ".".join(node_id.split(".")[:2])
    if branch != node_id:
        click(driver, branch)
    click(driver, node_id)


@needs_browser
def test_attributes_read_as_a_person_writes_them(browser, tmp_path):  # noqa: F811
    inspect_4a(browser, tmp_path, "4a.branch3x3.conv")
    facts = panel(browser)
    assert facts["name"] == "conv" and facts["out_channels"] == "208"  # ch3x3 of 4a
    assert facts["kernel"] == "3×3" and facts["stride"] == "1" and facts["padding"] == "1"
    assert facts["norm"] == "batch norm" and facts["activation"] == "ReLU"
    assert facts["bias"] == "yes" and facts["bn_eps"] == "1e-05"
    text = browser.find_element("id", "inspect").text
    assert "[3,3]" not in text and '"batch"' not in text and '"relu"' not in text


@needs_browser
@pytest.mark.parametrize("node_id, key", [("4a.branch3x3.conv", "ch3x3"), ("4a.branch1x1", "ch1x1")])
def test_the_yaml_key_a_width_comes_from_is_marked(browser, tmp_path, node_id, key):  # noqa: F811
    four_a = next(b for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["name"] == "4a")
    inspect_4a(browser, tmp_path, node_id)
    marks = browser.execute_script(
        "return [...document.querySelectorAll('#inspect pre mark')].map(m => m.textContent)"
    )
    assert marks == [f"{key}: {four_a[key]}"]


@needs_browser
def test_a_wrapped_yaml_line_keeps_its_indentation(browser, tmp_path):  # noqa: F811
    inspect_4a(browser, tmp_path, "4a.branch3x3.conv")
    # every visual line of the (long, wrapping) 4a line starts at or right of its text's first
    # character, not under the line number
    lefts = browser.execute_script(
        "const pre = document.querySelector('#inspect pre'); const range = document.createRange();"
        "range.selectNodeContents(pre); const rects = [...range.getClientRects()];"
        "const rows = new Map(); rects.forEach(r => { if (r.width > 0) {"
        "  const top = Math.round(r.top); rows.set(top, Math.min(rows.get(top) ?? 1e9, r.left)); } });"
        "const dash = document.createRange(); const text = [...pre.querySelectorAll('*')].concat([pre]);"
        "const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT); let first = null, n;"
        "while ((n = walker.nextNode())) { const i = n.textContent.indexOf('-'); if (i >= 0) {"
        "  dash.setStart(n, i); dash.setEnd(n, i + 1); first = dash.getBoundingClientRect().left; break; } }"
        "return {rows: [...rows.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1]), first};"
    )
    assert len(lefts["rows"]) > 1  # the line wraps in the 340-px panel
    assert all(left >= lefts["first"] - 0.5 for left in lefts["rows"][1:]), lefts


@needs_browser
def test_the_heading_says_what_a_node_is_and_where_it_sits(browser, tmp_path):  # noqa: F811
    four_a = next(b for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["name"] == "4a")
    inspect_4a(browser, tmp_path, "4a.branch3x3.reduce")
    heading = browser.execute_script("return document.querySelector('#inspect .what').textContent")
    assert panel(browser)["name"] == "reduce"
    assert heading == f"conv 1×1 → {four_a['ch3x3red']} · BN · ReLU · in 4a › branch3x3"
