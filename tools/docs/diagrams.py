"""docs/diagrams/: every spec in specs/ drawn at branches and at blocks detail, a compare
diagram (googlenet → googlenet-factorized) and googlenet in the paper theme (target ``diagrams``).

The SVGs are rendered with the embedded Graphviz (Graphviz compiled to WebAssembly, the same
build on every machine), so anyone regenerates them without a system install and a drawing is
the same bytes wherever it is made: ``--check`` redraws every diagram and compares the SVG
text byte for byte (not only the hash of the DOT each file records after its first line).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from archbuilder.render import diagram
from archbuilder.render.output import render_source
from tools.docs import ROOT, SPECS
from tools.docs.target import Output, Tree

OUTPUT = ROOT / "docs" / "diagrams"
DETAILS = {"branches": "", "blocks": "-blocks"}


def expected() -> Iterator[tuple[Path, str, str]]:
    """(output file, DOT source, its SHA-256) for every diagram docs/ should hold."""
    for spec in sorted(SPECS.glob("*.yaml")):
        for detail, suffix in DETAILS.items():
            source = diagram(spec, detail=detail).source
            yield OUTPUT / f"{spec.stem}{suffix}.svg", source, hashlib.sha256(source.encode()).hexdigest()
    for name, source in extras():
        yield OUTPUT / name, source, hashlib.sha256(source.encode()).hexdigest()


def extras() -> Iterator[tuple[str, str]]:
    """The pictures docs/diagrams.md shows beside the plain ones: a compare, the paper theme."""
    from archbuilder.ir import load_spec, lower
    from archbuilder.render.compare import compare_marks
    from archbuilder.render.graph import to_digraph

    factorized = load_spec(SPECS / "googlenet-factorized.yaml")
    marks = compare_marks(SPECS / "googlenet.yaml", factorized)
    yield "googlenet-vs-googlenet-factorized.svg", to_digraph(lower(factorized), marks=marks).source
    yield "googlenet-paper.svg", diagram(SPECS / "googlenet.yaml", theme="paper").source


def drawn(source: str, digest: str) -> str:
    """The file for one diagram: the embedded Graphviz's SVG, with the DOT's hash after its first line."""
    svg = render_source(source, "svg", engine="embedded").decode()
    declaration, _, rest = svg.partition("\n")
    return f"{declaration}\n<!-- archbuilder diagram: dot sha256 {digest} -->\n{rest}"


def outputs(tree: Tree) -> list[Output]:
    return [
        Output(path.relative_to(ROOT).as_posix(), None, drawn(source, digest))
        for path, source, digest in expected()
    ]
