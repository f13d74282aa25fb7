"""docs/inception-family.md: generated sizes are current, excerpts are the specs' own text, and
the figures it quotes are the published ones or follow from the specs."""

from __future__ import annotations

import re

import pytest
import yaml

import archbuilder
from tools.docs import inception_family

from .conftest import ROOT, SPECS
from .test_docs import fences

DOC = ROOT / "docs" / "inception-family.md"
EXCERPT = re.compile(r"<!-- excerpt: (\S+) -->\n```yaml\n(.*?)```", re.DOTALL)


@pytest.fixture(scope="module")
def tool():
    return inception_family


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_generated_sizes_are_current(tool, doc):
    assert tool.render(doc) == doc, (
        "docs/inception-family.md is stale: run `python -m tools.docs inception-family`"
    )


def test_every_stage_has_its_table_and_the_overview_lists_them(tool, doc):
    regions = tool.tables(doc)
    assert set(regions) == {"overview"} | {file for file, _ in tool.STAGES}
    listed = re.findall(r"\| \[([^]]+\.yaml)\]", regions["overview"])
    assert listed == [file for file, _ in tool.STAGES]
    with pytest.raises(ValueError, match="needs at least one"):
        tool.render("# no regions\n")
    with pytest.raises(ValueError, match=r"nothing\.yaml, which is not in specs/"):
        tool.render(f"{tool.begin_line('nothing.yaml')}\n{tool.end_line('nothing.yaml')}\n")


def test_published_sizes_appear(tool, doc):
    regions = tool.tables(doc)
    assert "| Parameters | 23,834,568 |" in regions["inception-v3.yaml"]  # torchvision's inception_v3
    assert "| Parameters with the aux heads | 27,161,264 |" in regions["inception-v3.yaml"]
    assert "| Parameters | 22,855,952 |" in regions["xception.yaml"]  # Keras' Xception, trainable
    assert "| Parameters | 7,013,112 |" in regions["googlenet.yaml"]


def test_excerpts_are_verbatim(doc):
    excerpts = EXCERPT.findall(doc)
    assert len(excerpts) >= 8
    for path, text in excerpts:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert text in source, f"an excerpt of {path} is not in it: {text[:80]!r}"
        assert text.startswith(tuple(line + "\n" for line in source.splitlines() if line.strip())), path


def test_links_and_images_exist(doc):
    targets = re.findall(r"\]\(([^)#]+)", doc) + re.findall(r'src="([^"]+)"', doc)
    assert [target for target in targets if not (DOC.parent / target).exists()] == []


def test_quoted_ratios_follow_from_the_specs(doc):
    naive = archbuilder.summarize(SPECS / "googlenet-naive.yaml")
    base = archbuilder.summarize(SPECS / "googlenet.yaml")
    assert round(naive.inference_params / base.inference_params) == 14 and "about 14 times" in doc
    assert round(naive.inference_macs / base.inference_macs) == 8 and "8 times its MACs" in doc
    last = [row for row in naive.rows if row.section == "blocks"][-1]
    assert f"{last.out_shape[0]:,} channels wide" in doc
    v3, xception = (
        archbuilder.summarize(SPECS / "inception-v3.yaml"),
        archbuilder.summarize(SPECS / "xception.yaml"),
    )
    # the sentence and the figures together: a reworded claim must come back here
    claim = "Xception has about as many parameters as Inception-v3 and half again as many"
    assert claim in " ".join(doc.split())
    assert 1.4 < xception.inference_macs / v3.inference_macs < 1.6  # "half again as many"
    assert abs(xception.params / v3.inference_params - 1) < 0.05  # "about as many parameters"


def test_the_inception_resnet_example_counts_by_hand():
    [block] = [fence for fence in fences(DOC) if fence.lang == "yaml" and fence.text.startswith("format: 1")]
    spec = archbuilder.load_spec(block.text)

    def conv(c_in: int, c_out: int, k: int) -> int:  # batch norm, no bias
        return k * k * c_in * c_out + 2 * c_out

    block35 = (
        conv(64, 16, 1)
        + (conv(64, 16, 1) + conv(16, 16, 3))
        + (conv(64, 16, 1) + conv(16, 24, 3) + conv(24, 32, 3))
    )
    block35 += 64 * 64 + 64  # the 1×1 back to 64 channels: bias, no norm
    expected = conv(3, 32, 3) + conv(32, 64, 3) + 3 * block35 + 64 * 10 + 10
    assert archbuilder.summarize(spec).params == expected
    merge = archbuilder.lower(spec).op("block35_2.add")
    assert merge.attrs["scales"] == (1.0, 0.17) and merge.attrs["activation"] == "relu"
    assert yaml.safe_load(block.text)["templates"]["block35"]["layer"]["branches"][1]["scale"] == "$scale"


def test_the_python_examples_compile():
    blocks = [fence for fence in fences(DOC) if fence.lang == "python"]
    assert len(blocks) >= 2
    for block in blocks:
        compile(block.text, "inception-family.md", "exec")


def test_the_lineage_figures_are_the_published_ones(tool, doc):
    regions = tool.tables(doc)
    assert "| Parameters | 11,295,240 |" in regions["bn-inception.yaml"]  # pretrainedmodels' bninception
    assert "| Parameters | 42,679,816 |" in regions["inception-v4.yaml"]  # timm's inception_v4
    assert "| Parameters | 55,843,464 |" in regions["inception-resnet-v2.yaml"]  # timm's inception_resnet_v2
    overview = regions["overview"]
    assert "| Inception-ResNet-v2 |" in overview and "scaled residuals" in overview
    row = next(line for line in overview.splitlines() if line.startswith("| Inception-v4 |"))
    assert "pools excluding padding" in row and "residual adds" not in row
