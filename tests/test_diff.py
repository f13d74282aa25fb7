"""archbuild diff / archbuilder.diff on the shipped variants, checked against the YAML itself
and against `archbuild summary --json` of each side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import archbuilder
from archbuilder.diff import diff
from archbuilder.spec.shipped import SHIPPED_SPECS

from .conftest import GOOGLENET, ROOT, SPECS

FACTORIZED = SPECS / "googlenet-factorized.yaml"
V1 = SPECS / "googlenet-v1-original.yaml"
WIDTHS = {"out", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"}


def archbuild(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def summary_totals(path) -> dict:
    result = archbuild("summary", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["total"]


def line_of(path, text: str, after: str = "") -> int:
    """1-based number of the first line holding ``text`` (after a line holding ``after``)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines) if i >= start and text in line) + 1


def test_factorized_changes_exactly_the_nine_inception_blocks():
    inception = {
        b["name"] for b in yaml.safe_load(GOOGLENET.read_text())["blocks"] if b["kind"] == "inception"
    }
    result = diff(GOOGLENET, FACTORIZED)
    changed = {entry.name: entry for entry in result.changed}
    assert len(inception) == 9 and set(changed) == inception
    for entry in changed.values():
        assert entry.status == "changed"
        assert [(f.path, f.old, f.new) for f in entry.fields] == [("factorize_5x5", False, True)]
    three_a = changed["3a"].fields[0]
    assert three_a.old_at == f"{GOOGLENET}:{line_of(GOOGLENET, 'name: 3a')}"  # not written: the layer's line
    assert three_a.new_at == f"{FACTORIZED}:{line_of(FACTORIZED, 'factorize_5x5', after='name: 3a')}"


@pytest.mark.slow  # four `archbuild summary` subprocesses
def test_delta_totals_equal_the_difference_of_the_two_summaries():
    for other in (FACTORIZED, V1):
        result = diff(GOOGLENET, other)
        old, new = summary_totals(GOOGLENET), summary_totals(other)
        assert result.params[1] - result.params[0] == new["params"] - old["params"]
        assert result.macs[1] - result.macs[0] == new["macs"] - old["macs"]
        # the per-entry deltas account for all of it
        assert sum(entry.delta_params for entry in result.entries) == new["params"] - old["params"]
        assert sum(entry.delta_macs for entry in result.entries) == new["macs"] - old["macs"]


def test_v1_reports_lrn_norm_and_pools_and_no_width_change():
    result = diff(GOOGLENET, V1)
    added = [(entry.name, entry.kind, entry.section) for entry in result.entries if entry.status == "added"]
    assert added == [("norm1", "lrn", "stem"), ("norm2", "lrn", "stem")]
    spec_fields = {field.path: (field.old, field.new) for field in result.spec_fields}
    assert spec_fields["defaults.conv.norm"] == ("batch", "none")
    pools = {entry.name: entry for entry in result.changed if entry.kind == "maxpool"}
    assert set(pools) == {"pool1", "pool2", "pool3", "pool4"}
    for entry in pools.values():
        assert {(f.path, f.old, f.new) for f in entry.fields} == {
            ("ceil_mode", False, True),
            ("padding", 1, 0),
        }
    for entry in result.entries:
        assert not {field.path.rsplit(".", 1)[-1] for field in entry.fields} & WIDTHS
        assert entry.status == "added" or entry.shape[0] == entry.shape[1]  # no shape changed anywhere


def test_renamed_block_with_the_same_content_is_reported_as_renamed(tmp_path):
    renamed = tmp_path / "renamed.yaml"
    text = GOOGLENET.read_text().replace("{name: 4c,", "{name: mixed_4c,")
    renamed.write_text(text.replace("../schema", str(ROOT / "schema")))
    result = diff(GOOGLENET, renamed)
    assert [(e.status, e.old_name, e.name) for e in result.changed] == [("renamed", "4c", "mixed_4c")]


def test_repeat_counts_every_copy_and_unchanged_spec_has_no_changes():
    same = diff(SPECS / "xception.yaml", SPECS / "xception.yaml")
    assert same.changed == () and same.spec_fields == ()
    middle = next(entry for entry in same.entries if entry.name == "middle")
    rows = archbuilder.summarize(SPECS / "xception.yaml").rows
    assert middle.params[1] == sum(row.params for row in rows if row.name.startswith("middle_"))
    assert len(middle.ir_names) == 8


def test_cli_diff_text_and_json():
    result = archbuild("diff", str(GOOGLENET), str(FACTORIZED))
    assert result.returncode == 0, result.stderr
    assert "~ 4a (inception, blocks) changed" in result.stdout
    assert "factorize_5x5: false → true" in result.stdout
    data = json.loads(archbuild("diff", str(GOOGLENET), str(FACTORIZED), "--json").stdout)
    assert [entry["name"] for entry in data["entries"]] == [
        "3a",
        "3b",
        "4a",
        "4b",
        "4c",
        "4d",
        "4e",
        "5a",
        "5b",
    ]
    assert data["total"]["params"]["delta"] == sum(entry["params"]["delta"] for entry in data["entries"])


def test_cli_diff_set_applies_to_b():
    result = archbuild("diff", str(GOOGLENET), str(GOOGLENET), "--set", "blocks.3a.ch1x1=32", "--json")
    data = json.loads(result.stdout)
    first = data["entries"][0]
    assert first["name"] == "3a" and first["fields"][0]["new_at"] == "--set blocks.3a.ch1x1"
    # 32 fewer 1×1 filters over 192 channels, each with a bias and a batch-norm scale and shift
    assert first["params"]["delta"] == -(192 * 32 + 32 + 2 * 32)


def absolute_paths(text: str) -> list[str]:
    """Words of ``text`` that are (or start with) an absolute path, ``file:line`` included."""
    words = [word.rsplit(":", 1)[0] if word.rsplit(":", 1)[-1].isdigit() else word for word in text.split()]
    return [word for word in words if len(word) > 1 and (Path(word).is_absolute() or word.startswith(os.sep))]


def test_cli_diff_shows_shipped_specs_by_name(tmp_path):
    """Issue 25: `diff googlenet googlenet-v1-original` printed two absolute paths (the
    installed package's) on every line; a shipped spec given by name is shown by its name."""
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", "diff", "googlenet", "googlenet-v1-original"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert absolute_paths(result.stdout) == [] and "site-packages" not in result.stdout
    pool1 = (
        f"googlenet:{line_of(GOOGLENET, 'name: pool1')} · googlenet-v1-original:{line_of(V1, 'name: pool1')}"
    )
    assert f"~ pool1 (maxpool, stem) changed   {pool1}" in result.stdout.splitlines()
    assert f"    padding: 1 → 0   {pool1}" in result.stdout.splitlines()


def test_cli_diff_shows_files_as_given_and_inherited_keys_by_shipped_name(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "base.yaml").write_text("extends: googlenet\nnum_classes: 10\n")
    (models / "mine.yaml").write_text("extends: base.yaml\nblocks: {3a: {ch1x1: 32}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", "diff", "googlenet", os.path.join("models", "mine.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert absolute_paths(result.stdout) == [] and str(tmp_path) not in result.stdout
    lines = result.stdout.splitlines()
    base, mine = os.path.join("models", "base.yaml"), os.path.join("models", "mine.yaml")
    three_a = line_of(GOOGLENET, "name: 3a")
    assert f"    num_classes: 1000 → 10   googlenet:{line_of(GOOGLENET, 'num_classes')} · {base}:2" in lines
    # the block is written in googlenet (on both sides); its changed field in mine.yaml
    assert f"~ 3a (inception, blocks) changed   googlenet:{three_a} · googlenet:{three_a}" in lines
    assert f"    ch1x1: 64 → 32   googlenet:{three_a} · {mine}:2" in lines
    # the Python API and --json keep the files as loaded
    assert diff("googlenet", models / "mine.yaml").spec_fields[-1].old_at.startswith(str(SHIPPED_SPECS))
