"""docs/diagrams/ holds a current diagram of every shipped spec."""

from __future__ import annotations

import pytest

from tools.docs import diagrams, run
from tools.docs.target import Tree

from .conftest import ROOT


@pytest.mark.slow  # about 5 s on two cores: every shipped spec drawn twice, and three more
def test_every_shipped_spec_has_a_current_diagram():
    """Each file is what drawing its spec's DOT gives now, byte for byte (not only its recorded
    hash): `python -m tools.docs --check diagrams`."""
    stale = run.stale(diagrams.outputs(Tree()), Tree())
    assert stale == [], f"stale or missing diagrams {stale}: run `python -m tools.docs diagrams`"


def test_no_diagram_without_a_spec():
    expected = {path.name for path, _, _ in diagrams.expected()}
    assert {path.name for path in (ROOT / "docs" / "diagrams").glob("*.svg")} == expected
