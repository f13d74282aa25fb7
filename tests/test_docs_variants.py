"""docs/variants.md: its generated tables are current, and its figures are the published ones.

The tables are written by `python -m tools.docs variants`; the first test fails when they are
stale. The others read the page as a reader would and check its figures against numbers
fixed here (the published parameter counts) or computed here, not by the tool.
"""

from __future__ import annotations

import re

import pytest

import archbuilder
from tools.docs import regions, variants

from .conftest import GOOGLENET, ROOT, SPECS

DOC = ROOT / "docs" / "variants.md"


@pytest.fixture(scope="module")
def tool():
    return variants


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def tables(text: str) -> dict[str, list[dict[str, str]]]:
    """The markdown tables of ``text`` by the heading above them: one dict per body row."""
    found: dict[str, list[dict[str, str]]] = {}
    heading, header = "", None
    for line in text.splitlines():
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip(), None
        elif not line.startswith("|"):
            header = None
        else:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                found.setdefault(heading, []).append(dict(zip(header, cells)))
    return found


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


@pytest.fixture(scope="module")
def generated_tables(tool, doc) -> dict[str, list[dict[str, str]]]:
    part = tool.current(doc)
    lines = f"{regions.begin_line(tool.REGION)!r} and {regions.end_line(tool.REGION)!r}"
    assert part is not None, f"docs/variants.md lacks the lines {lines}"
    return tables(part)


@pytest.fixture(scope="module")
def totals(generated_tables) -> dict[str, dict[str, str]]:
    return {row["Variant"].strip("`"): row for row in generated_tables["Totals"]}


def test_generated_part_is_current(tool, doc):
    assert tool.current(doc) == tool.generated(), (
        "docs/variants.md is stale: run `python -m tools.docs variants`"
    )


def test_render_needs_the_markers(tool):
    with pytest.raises(ValueError, match="needs the lines"):
        tool.render("# no markers\n")


def variant_specs() -> list[str]:
    """The shipped variants: the specs `archbuild emit` wrote (their header says so), and the
    hand-written googlenet.yaml they were emitted from (it is the v1-bn variant)."""
    emitted = [path.name for path in SPECS.glob("*.yaml") if "emitted by `archbuild emit" in path.read_text()]
    return sorted([*emitted, "googlenet.yaml"])


def test_every_variant_spec_is_listed_once(generated_tables):
    rows = generated_tables["Totals"]
    listed = sorted(re.search(r"\[([^]]+)\]", row["Spec"]).group(1) for row in rows)
    assert listed == variant_specs()
    assert "inception-v3.yaml" not in listed and len(listed) == len(set(listed))


@pytest.mark.parametrize(
    ("variant", "file", "params", "without_aux"),
    [
        ("v1", "googlenet-v1-original.yaml", 13_378_280, 6_998_552),
        ("torchvision", "googlenet-torchvision.yaml", 13_004_888, 6_624_904),
        ("v1-bn", "googlenet.yaml", 13_393_352, 7_013_112),
    ],
)
def test_published_parameter_counts(totals, variant, file, params, without_aux):
    row = totals[variant]
    assert f"[{file}]" in row["Spec"]
    assert number(row["Params"]) == params
    assert number(row["Params without aux heads"]) == without_aux
    summary = archbuilder.summarize(SPECS / file)  # and the spec itself, not only the page
    assert (summary.params, summary.inference_params) == (params, without_aux)


def test_naive_3a_width_compounds(generated_tables):
    row = next(row for row in generated_tables["Per Inception block"] if row["Block"] == "`3a`")
    assert number(row["naive C"]) == 64 + 128 + 32 + 192 == 416  # the pool branch passes 192 through
    assert number(row["v1-bn C"]) == 64 + 128 + 32 + 32
    spec = archbuilder.load_spec(SPECS / "googlenet-naive.yaml")
    assert archbuilder.lower(spec).op("3a.concat").shape == (416, 28, 28)


def test_per_block_figures_match_the_summaries(generated_tables, totals):
    rows = generated_tables["Per Inception block"]
    summary = archbuilder.summarize(GOOGLENET)
    for entry in summary.rows:
        if entry.kind == "inception":
            row = next(row for row in rows if row["Block"] == f"`{entry.name}`")
            assert number(row["v1-bn C"]) == entry.out_shape[0]
            assert row["v1-bn M"] == f"{entry.macs / 1e6:,.1f}"
    assert totals["v1-bn"]["GMACs without aux heads"] == f"{summary.inference_macs / 1e9:.2f}" == "1.58"


def test_diagram_links_exist(generated_tables):
    links = [
        target
        for row in generated_tables["Diagrams"]
        for cell in row.values()
        for target in re.findall(r"\]\(([^)]+)\)", cell)
    ]
    assert len(links) == 2 * len(variant_specs())
    assert [link for link in links if not (DOC.parent / link).is_file()] == []


def test_prose_figures(doc, tool):
    """The figures quoted in the prose, outside the generated part, are the specs' own."""
    prose = doc.replace(tool.current(doc), "")
    base = archbuilder.summarize(GOOGLENET)
    naive = archbuilder.summarize(SPECS / "googlenet-naive.yaml")
    factorized = archbuilder.summarize(SPECS / "googlenet-factorized.yaml")
    quoted = [
        naive.inference_params,
        base.inference_params,
        factorized.inference_params,
        factorized.inference_params - base.inference_params,
        base.params - archbuilder.summarize(SPECS / "googlenet-v1-original.yaml").params,
    ]
    assert [value for value in quoted if f"{value:,}" not in prose] == []
    for macs in (naive.inference_macs, base.inference_macs, factorized.inference_macs):
        assert f"{macs / 1e9:.2f}" in prose
    naive_5b = next(row for row in naive.rows if row.name == "5b")
    assert f"{naive_5b.out_shape[0]:,}" in prose


def test_factorizing_costs_more_at_googlenet_widths_and_save_at_equal_widths():
    """What the page says about factorize_5x5, checked on the IR."""
    base = archbuilder.summarize(GOOGLENET)
    factorized = archbuilder.summarize(SPECS / "googlenet-factorized.yaml")
    assert factorized.inference_params > base.inference_params
    assert factorized.inference_macs > base.inference_macs

    def branch_params(red: int, out: int, factorize: bool) -> int:
        spec = archbuilder.load_spec(
            "name: f\ninput: {channels: 8, height: 8, width: 8}\n"
            "defaults: {conv: {norm: none, bias: false}}\nblocks:\n"
            f"  - {{name: b, kind: inception, ch1x1: 8, ch3x3: 8, ch5x5red: {red}, ch5x5: {out},"
            f" factorize_5x5: {str(factorize).lower()}}}\n"
        )
        ir = archbuilder.lower(spec)
        return sum(op.params for op in ir.ops() if op.id.startswith("b.branch5x5.conv"))

    assert branch_params(32, 32, True) * 25 == branch_params(32, 32, False) * 18
    assert branch_params(16, 32, True) > branch_params(16, 32, False)  # 3a's widths
