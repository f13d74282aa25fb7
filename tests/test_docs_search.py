"""docs/search.md as written: its space is the shipped one, its commands print what it shows,
its Python runs."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

import archbuilder

from .conftest import ROOT
from .test_docs import DOCS, fences

PAGE = fences(DOCS / "search.md")
SHIPPED_SPACES = sorted((ROOT / "specs" / "spaces").glob("*.yaml"))


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_first_space_is_the_shipped_one():
    block = next(b for b in PAGE if b.lang == "yaml" and b.text.startswith("# A search space around"))
    shipped = (ROOT / "specs" / "spaces" / "inception-digits.yaml").read_text()
    assert _code_lines(block.text) == _code_lines(shipped)


def _sessions() -> list:
    return [b for b in PAGE if b.lang in ("console", "text") and b.text.startswith("$ archbuild space")]


@pytest.mark.parametrize("block", _sessions(), ids=lambda block: block.id)
def test_archbuild_space_prints_what_the_page_shows(block, tmp_path):
    command, *expected = block.text.rstrip("\n").split("\n")
    args = shlex.split(command[2:])[1:]
    name = args[-1]
    cwd = ROOT
    if not (ROOT / name).exists():  # a space the page writes out just above the session
        before = PAGE[: PAGE.index(block)]
        space = next(b for b in reversed(before) if b.lang == "yaml")
        (tmp_path / name).write_text(space.text)
        cwd = tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert (result.stdout + result.stderr).rstrip("\n").split("\n") == expected


def test_the_sample_header_is_what_archbuild_sample_writes(tmp_path):
    block = next(b for b in PAGE if b.lang == "yaml" and b.text.startswith("# archbuilder: candidate"))
    command = ["sample", "specs/spaces/inception-digits.yaml", "-n", "1", "--seed", "1", "-o", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", *command], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "inception-digits-001.yaml").read_text()
    assert written.startswith(block.text)


@pytest.mark.slow
def test_python_blocks(monkeypatch):
    blocks = [b for b in PAGE if b.lang == "python"]
    assert len(blocks) == 2
    for block in blocks:
        compile(block.text, block.id, "exec")
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(blocks[0].text, blocks[0].id, "exec"), namespace)
    assert namespace["valid"] == 487 and namespace["space"].size == 648
    assert isinstance(namespace["one"], archbuilder.ArchSpec)


@pytest.mark.parametrize("path", SHIPPED_SPACES, ids=lambda path: path.name)
def test_shipped_spaces_load_and_sample(path):
    space = archbuilder.load_space(path)
    assert space.decisions
    for candidate in space.sample(3, seed=0):
        assert archbuilder.load_spec(candidate.spec.to_yaml()) == candidate.spec


def test_the_readme_space_loads(tmp_path):
    readme = (ROOT / "README.md").read_text().split("## Search spaces", 1)[1]
    text = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "space.yaml").write_text(text)  # anywhere: it extends the shipped spec by name
    space = archbuilder.load_space(tmp_path / "space.yaml")
    assert space.size == 3 * 3 * 3 and space.constraints.max_macs == 4_500_000
