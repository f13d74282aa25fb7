"""docs/families.md: generated from the shipped specs and the prose fragments, and current.

The truths: torchvision's own metadata (parameters, GFLOPs) for the figures the page quotes,
and the spec files themselves for the excerpts.
"""

from __future__ import annotations

import re

import pytest
import torchvision

from tools.docs import families

from .conftest import ROOT, SPECS

DOC = ROOT / "docs" / "families.md"


@pytest.fixture(scope="module")
def tool():
    return families


def test_the_page_is_current(tool):
    assert tool.render() == DOC.read_text(encoding="utf-8"), (
        "docs/families.md is stale: run `python -m tools.docs families`"
    )


def test_every_shipped_family_with_a_fragment_has_its_section(tool):
    page = DOC.read_text(encoding="utf-8")
    for spec in tool.FAMILIES:
        written = (SPECS / f"{spec}.yaml").is_file() and (tool.FRAGMENTS / f"{spec}.md").is_file()
        assert (f"(`specs/{spec}.yaml`)" in page) == written, spec
    assert "(`specs/resnet50.yaml`)" in page and "(`specs/densenet121.yaml`)" in page


def test_figures_are_torchvisions_metadata(tool):
    page = DOC.read_text(encoding="utf-8")
    for builder in ("resnet50", "densenet121"):
        meta = torchvision.models.get_model_weights(builder).DEFAULT.meta
        assert f"| Parameters | {meta['num_params']:,} | {meta['num_params']:,} |" in page
        assert f"| {meta['_ops']:.3f} G | {meta['_ops']:.3f} G (equal) |" in page


def test_excerpts_are_the_specs_templates_verbatim():
    page = DOC.read_text(encoding="utf-8")
    excerpts = re.findall(r"The block templates of `specs/(\S+)`:\n\n```yaml\n(.*?)```", page, re.DOTALL)
    assert {file for file, _ in excerpts} >= {"resnet50.yaml", "densenet121.yaml"}
    for file, text in excerpts:
        assert text.startswith("templates:\n") and text in (SPECS / file).read_text(encoding="utf-8")


def test_a_missing_fragment_drops_its_section_and_a_bad_one_is_refused(tool, tmp_path):
    (tmp_path / "resnet50.md").write_text("<!-- torchvision: resnet50 -->\n## R\n\nText.\n")
    page = tool.render(tmp_path)
    assert "## R\n\nText.\n" in page and "densenet121" not in page
    assert page.index("The block templates") < page.index("| Parameters |")  # after the prose
    (tmp_path / "resnet50.md").write_text("## no builder line\n")
    with pytest.raises(ValueError, match="torchvision: BUILDER"):
        tool.render(tmp_path)
