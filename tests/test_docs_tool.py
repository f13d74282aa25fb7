"""`python -m tools.docs`: one command regenerates or checks every generated region of the docs.

The truth for each check is the committed doc itself: a copy with one number edited by hand
is stale, the unedited copy is current, and regenerating the edited copy gives the committed
file back byte for byte.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tools.docs import regions
from tools.docs.__main__ import main
from tools.docs.registry import NAMES, TARGETS
from tools.docs.target import Tree

from .conftest import ROOT

FAST = [target.name for target in TARGETS if not target.slow]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_fast_targets_are_current(capsys):
    """What `.ci/run` checks after the suite, but the diagrams (tests/test_docs_diagrams.py)."""
    status = main(["--check", *FAST])
    assert status == 0, capsys.readouterr().out


def copy_docs(root) -> None:
    (root / "docs").mkdir()
    for doc in DOCS:
        shutil.copy(doc, root / doc.relative_to(ROOT))


# (target, doc, region, a number inside it as committed, the same number edited by hand)
EDITS = [
    ("variants", "docs/variants.md", "variants", "| 13,393,352 |", "| 13,393,353 |"),
    ("spec", "docs/spec.md", "fields/Scale", "| integer 1–256 | `8` |", "| integer 1–256 | `9` |"),
    (
        "inception-family",
        "docs/inception-family.md",
        "sizes/xception.yaml",
        "| 22,855,952 |",
        "| 22,855,953 |",
    ),
    ("performance", "README.md", "performance", None, None),  # its first figure with a decimal point
]


@pytest.mark.parametrize(("target", "doc", "region", "before", "after"), EDITS, ids=[e[0] for e in EDITS])
def test_a_hand_edited_number_is_stale_and_regenerating_restores_it(
    capsys, tmp_path, target, doc, region, before, after
):
    copy_docs(tmp_path)
    tree = Tree(root=tmp_path)
    assert main(["--check", target], tree) == 0
    capsys.readouterr()

    text = (tmp_path / doc).read_text(encoding="utf-8")
    body = regions.regions(text)[region]
    if before is None:
        before = re.search(r"\d+\.\d+", body)[0]
        after = before[:-1] + str((int(before[-1]) + 1) % 10)
    assert before in body
    edited = text.replace(body, body.replace(before, after, 1))
    (tmp_path / doc).write_text(edited, encoding="utf-8")

    assert main(["--check", target], tree) == 1
    out = capsys.readouterr().out
    assert f"stale: {doc} [{region}]" in out
    assert out.count("stale: ") == 1, out  # only the edited region
    assert (tmp_path / doc).read_text(encoding="utf-8") == edited  # --check writes nothing

    assert main([target], tree) == 0
    assert f"wrote {doc}" in capsys.readouterr().out
    assert (tmp_path / doc).read_bytes() == (ROOT / doc).read_bytes()


def test_a_region_without_its_lines_is_refused(capsys, tmp_path):
    copy_docs(tmp_path)
    page = tmp_path / "docs" / "variants.md"
    page.write_text(page.read_text(encoding="utf-8").replace(regions.end_line("variants"), ""))
    assert main(["--check", "variants"], Tree(root=tmp_path)) == 1
    assert "stale: docs/variants.md [variants]" in capsys.readouterr().out
    assert main(["variants"], Tree(root=tmp_path)) == 1
    assert "docs/variants.md needs the lines" in capsys.readouterr().err


def test_every_marker_line_in_the_docs_is_one_of_a_well_formed_region():
    """One marker format everywhere: each `generated:` line opens or closes a region the
    parser finds, and none of the five earlier formats is left."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        found = regions.regions(text)
        lines = [line for line in text.splitlines() if line.startswith("<!-- generated:")]
        assert len(lines) == 2 * len(found), doc.name
        earlier = re.findall(r"<!-- (?:\S+:begin |fields: |sizes: |kinds \(|/fields|/sizes|/kinds)", text)
        assert earlier == [], doc.name


def test_the_command_lists_its_targets_from_the_repository_root():
    listed = subprocess.run(
        [sys.executable, "-m", "tools.docs", "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert [line.split()[0] for line in listed.splitlines()] == list(NAMES)


def test_an_unknown_target_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2 and "no target nope" in capsys.readouterr().err
