"""Error messages for broken specs, compared with golden files.

Regenerate the golden files after an intended wording change with
``ARCHBUILDER_REGEN_GOLDEN=1 pytest tests/test_errors.py``: each test whose golden file it
changes then fails, saying so, so a regenerated golden is always a reviewed diff; review it
with ``git diff tests/data/broken`` and run the tests again without the switch.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import archbuilder
from archbuilder.core.errors import SpecError

from .conftest import ROOT

BROKEN = sorted((ROOT / "tests" / "data" / "broken").glob("*.yaml"))
SHARED = [ROOT / "tests" / "data"]  # the corpus extends files in tests/data/bases
REGENERATE = os.environ.get("ARCHBUILDER_REGEN_GOLDEN") == "1"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_error_message_matches_golden(path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(path.relative_to(ROOT), allowed_roots=SHARED)
    golden = path.with_suffix(".expected")
    message = str(caught.value) + "\n"
    if REGENERATE and (not golden.exists() or golden.read_text() != message):
        golden.write_text(message)
        pytest.fail(f"rewrote {golden.relative_to(ROOT)}: review `git diff` and run again without the switch")
    assert golden.exists(), f"no golden file {golden.name}: run with ARCHBUILDER_REGEN_GOLDEN=1"
    assert message == golden.read_text()


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_every_problem_is_located(path: Path):
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(path, allowed_roots=SHARED)
    for problem in caught.value.problems:
        assert problem.file is not None and Path(problem.file).is_file(), problem
        assert problem.line is not None and problem.column is not None, problem


def test_problems_are_listed_in_source_order():
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(ROOT / "tests" / "data" / "broken" / "wrong_values.yaml")
    lines = [(p.line, p.column) for p in caught.value.problems]
    assert lines == sorted(lines) and len(lines) == 10


def test_unsafe_tag_is_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    text = f"name: x\ninput: !!python/object/apply:os.system ['touch {marker}']\nblocks: []\n"
    with pytest.raises(SpecError, match="unsupported YAML tag"):
        archbuilder.load_spec(text)
    assert not marker.exists()


def test_alias_bomb_is_rejected_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 9)
    ]
    with pytest.raises(SpecError, match="expands to more than 200,000 values"):
        archbuilder.load_spec("\n".join(lines) + "\n")


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        archbuilder.load_spec(tmp_path / "absent.yaml")
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(SpecError, match="not UTF-8"):
        archbuilder.load_spec(binary)


def test_lowering_a_spec_built_in_python_raises_without_positions():
    spec = archbuilder.ArchSpec.model_validate(
        {
            "name": "x",
            "input": {"channels": 1, "height": 2, "width": 2},
            "blocks": [{"kind": "maxpool", "kernel": 3}],
        }
    )
    with pytest.raises(SpecError) as caught:
        archbuilder.lower(spec)
    assert caught.value.problems[0].line is None
    assert "blocks.0: maxpool1: input height 2" in str(caught.value)


@pytest.mark.parametrize("depth", [80, 5000])
def test_deep_nesting_is_a_clean_error(depth):
    with pytest.raises(SpecError, match="nest"):
        archbuilder.load_spec("name: x\ninput: " + "[" * depth + "]" * depth + "\n")
