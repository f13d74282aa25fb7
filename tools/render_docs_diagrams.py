"""Regenerate docs/diagrams/: every spec in specs/ drawn at branches and at blocks detail, a
compare diagram (googlenet → googlenet-factorized) and googlenet in the paper theme.

    python tools/render_docs_diagrams.py

The SVGs are rendered with the embedded Graphviz, so anyone regenerates them without a
system install. Each file records the SHA-256 of the DOT it was drawn from; the test suite
redraws every diagram and fails when a file differs from the drawing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from archbuilder.core.files import write_atomic
from archbuilder.render import diagram
from archbuilder.render.output import render_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
OUTPUT = ROOT / "docs" / "diagrams"
DETAILS = {"branches": "", "blocks": "-blocks"}
MARKER = re.compile(r"<!-- archbuilder diagram: dot sha256 ([0-9a-f]{64}) -->")


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
    from archbuilder.ir import lower
    from archbuilder.render.compare import compare_marks
    from archbuilder.render.graph import to_digraph
    from archbuilder.spec import load_spec

    factorized = load_spec(SPECS / "googlenet-factorized.yaml")
    marks = compare_marks(SPECS / "googlenet.yaml", factorized)
    yield "googlenet-vs-googlenet-factorized.svg", to_digraph(lower(factorized), marks=marks).source
    yield "googlenet-paper.svg", diagram(SPECS / "googlenet.yaml", theme="paper").source


def recorded_hash(svg: Path) -> str | None:
    match = MARKER.search(svg.read_text()) if svg.exists() else None
    return match.group(1) if match else None


def drawn(source: str, digest: str) -> str:
    """The file for one diagram: the embedded Graphviz's SVG, with the DOT's hash after its first line."""
    svg = render_source(source, "svg", engine="embedded").decode()
    declaration, _, rest = svg.partition("\n")
    return f"{declaration}\n<!-- archbuilder diagram: dot sha256 {digest} -->\n{rest}"


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for path, source, digest in expected():
        write_atomic(path, drawn(source, digest).encode())
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
