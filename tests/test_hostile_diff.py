"""diff's matcher against many entries: linear in them, and the pairs of the quadratic original.

Two specs whose entries share no name and no content made the matcher compare every entry
with every other (8,000 each: over a minute); it now looks keys up in tables. The pairs
it makes are checked against the original pairwise scan, written out here as the reference.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from archbuilder.diff.match import _Entry, _match

from .conftest import ROOT


def _spec(prefix: str, function: str, count: int) -> str:
    lines = ["name: wide", "input: {channels: 1, height: 4, width: 4}", "blocks:"]
    lines += [f"  - {{name: {prefix}{i}, kind: activation, function: {function}}}" for i in range(count)]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_diff_of_8000_unmatched_entries_takes_seconds(tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(_spec("a", "relu", 8_000))
    new.write_text(_spec("b", "tanh", 8_000))
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "archbuilder", "diff", str(old), str(new), "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("archbuild diff ran past 180 s")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 30  # over 60 s when every pair was compared
    assert result.stdout.count('"status": "changed"') == 8_000  # paired by position, b0 with a0 …


def _reference(old: list[_Entry], new: list[_Entry]) -> dict[int, int]:
    """The matcher as it was: each pass scans the new entries for every unpaired old one."""
    pairs: dict[int, int] = {}
    by_name = {entry.name: j for j, entry in enumerate(new)}
    for i, entry in enumerate(old):
        if entry.name in by_name:
            pairs[i] = by_name[entry.name]
    for same in (
        lambda x, y: x.section == y.section and x.content == y.content,
        lambda x, y: x.section == y.section and x.index == y.index,
    ):
        taken = set(pairs.values())
        for i, entry in enumerate(old):
            if i in pairs:
                continue
            j = next((j for j, other in enumerate(new) if j not in taken and same(entry, other)), None)
            if j is not None:
                pairs[i] = j
                taken.add(j)
    return pairs


def _entries(rng: random.Random) -> list[_Entry]:
    entries, index = [], {"stem": 0, "blocks": 0}
    for _ in range(rng.randrange(12)):
        section = rng.choice(["stem", "blocks"])
        content = {"kind": "conv", "out": rng.choice([8, 8.0, 16]), "pad": rng.choice([[1, 1], [0, 0], 1])}
        entries.append(
            _Entry(section, index[section], rng.choice("abcdefg"), "conv", content, 0, 0, (1,), ("x",))
        )
        index[section] += 1
    return entries


def test_the_pairs_are_those_of_the_pairwise_scan():
    rng = random.Random(26)
    for _ in range(2_000):
        old, new = _entries(rng), _entries(rng)
        assert _match(old, new) == _reference(old, new)
