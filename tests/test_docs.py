"""Keep the examples in docs/ honest.

Every ```yaml block in docs/*.md whose first line is ``format: 1`` is a complete spec and
must load; other yaml blocks are excerpts (or deliberately broken specs) and are skipped.
The complete example of docs/spec.md must also build and run. Every ```python block of
docs/python-api.md must compile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import archbuilder

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class Fence:
    file: str
    line: int  # 1-based line of the opening fence
    lang: str
    heading: str  # the nearest heading above the block
    text: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def fences(path: Path) -> list[Fence]:
    """The fenced code blocks of a markdown file."""
    blocks: list[Fence] = []
    heading, opened, lang, body = "", 0, "", []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if opened:
            if line.strip() == "```":
                blocks.append(Fence(path.name, opened, lang, heading, "\n".join(body) + "\n"))
                opened = 0
            else:
                body.append(line)
        elif line.startswith("```"):
            opened, lang, body = number, line[3:].strip(), []
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
    assert not opened, f"{path.name}:{opened}: unclosed code fence"
    return blocks


def complete_specs() -> list[Fence]:
    return [
        block
        for path in sorted(DOCS.glob("*.md"))
        for block in fences(path)
        if block.lang == "yaml" and block.text.splitlines()[:1] == ["format: 1"]
    ]


def python_blocks() -> list[Fence]:
    return [block for block in fences(DOCS / "python-api.md") if block.lang == "python"]


def test_docs_have_examples() -> None:
    assert {"index.md", "spec.md", "cli.md", "python-api.md"} <= {p.name for p in DOCS.glob("*.md")}
    assert len(complete_specs()) >= 2
    assert python_blocks()


@pytest.mark.parametrize("block", complete_specs(), ids=lambda block: block.id)
def test_complete_spec_loads(block: Fence) -> None:
    archbuilder.load_spec(block.text)


@pytest.mark.parametrize("block", python_blocks(), ids=lambda block: block.id)
def test_python_block_compiles(block: Fence) -> None:
    compile(block.text, block.id, "exec")


def test_spec_complete_example_builds_and_runs() -> None:
    torch = pytest.importorskip("torch")
    examples = [
        block for block in complete_specs() if block.file == "spec.md" and block.heading == "Complete example"
    ]
    assert len(examples) == 1, "docs/spec.md should have one complete spec under '## Complete example'"
    spec = archbuilder.load_spec(examples[0].text)
    assert spec.aux_heads and spec.num_classes

    torch.manual_seed(0)
    model = archbuilder.build(spec)
    model.eval()
    batch = 2
    x = torch.randn(batch, spec.input.channels, spec.input.height, spec.input.width)
    with torch.no_grad():
        logits = model(x)
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (batch, spec.num_classes)


def test_reserved_names_are_all_documented():
    from archbuilder.ir.names import RESERVED_NAMES

    text = (DOCS / "spec.md").read_text()
    assert [name for name in sorted(RESERVED_NAMES) if f"`{name}`" not in text] == []
