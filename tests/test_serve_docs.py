"""docs/serve.md: its latency table is the stored run's, and the screenshots it shows exist."""

from __future__ import annotations

import re

from .conftest import ROOT

DOC = ROOT / "docs" / "serve.md"
LOG = ROOT / "bench" / "results" / "xeon2-serve-latency.txt"


def _rows(text: str) -> dict[str, list[str]]:
    """Spec name -> the numbers of its row, from every Markdown table row of ``text``."""
    found = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 3 and all(re.fullmatch(r"\d+", c) for c in cells[1:5]):
            found[cells[0]] = cells[1:5]
    return found


def test_the_latency_table_is_the_stored_run():
    doc = DOC.read_text()
    assert LOG.name in doc
    stored = _rows(LOG.read_text())
    assert set(stored) == {"googlenet", "inception-v3", "inception-resnet-v2"}
    assert _rows(doc) == stored


def test_the_screenshots_are_there():
    for name in re.findall(r"\]\((serve-[\w-]+\.png)\)", DOC.read_text()):
        assert (ROOT / "docs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert len(re.findall(r"\]\((serve-[\w-]+\.png)\)", DOC.read_text())) == 2
