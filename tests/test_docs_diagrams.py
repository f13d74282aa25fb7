"""docs/diagrams/ holds a current diagram of every shipped spec."""

from __future__ import annotations

import pytest

from .conftest import ROOT, load_tool


def _tool():
    return load_tool("render_docs_diagrams")


@pytest.mark.slow
def test_every_shipped_spec_has_a_current_diagram():
    """Each file is what drawing its spec's DOT gives now, byte for byte (not only its recorded hash)."""
    tool = _tool()
    stale = [
        path.name
        for path, source, digest in tool.expected()
        if not path.exists() or path.read_text() != tool.drawn(source, digest)
    ]
    assert stale == [], f"stale or missing diagrams {stale}: run `python tools/render_docs_diagrams.py`"


def test_no_diagram_without_a_spec():
    tool = _tool()
    expected = {path.name for path, _, _ in tool.expected()}
    assert {path.name for path in (ROOT / "docs" / "diagrams").glob("*.svg")} == expected
