"""extends, overrides, scale and repeat: what composes, and where errors point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archbuilder
from archbuilder.core.errors import SpecError
from archbuilder.spec.scale import make_divisible

from .conftest import GOOGLENET, ROOT

SMALL = """\
name: small
input: {channels: 3, height: 16, width: 16}
num_classes: 4
blocks:
  - {name: stem, kind: conv, out: 16, kernel: 3, padding: 1}
  - {name: mix, kind: inception, ch1x1: 8, ch3x3red: 8, ch3x3: 16, ch5x5red: 4, ch5x5: 8, pool_proj: 8}
  - {name: pool, kind: maxpool, kernel: 2}
head: [{name: gap, kind: global_avgpool}, {kind: flatten}, {name: fc, kind: linear, out: num_classes}]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_patches_entries_by_name(tmp_path):
    write(tmp_path, "base.yaml", SMALL)
    child = write(
        tmp_path,
        "child.yaml",
        "extends: base.yaml\nnum_classes: 7\nblocks:\n  mix: {ch1x1: 24}\n  pool: null\n",
    )
    spec = archbuilder.load_spec(child)
    assert spec.num_classes == 7
    assert [layer.name for layer in spec.blocks] == ["stem", "mix"]
    assert spec.blocks[1].ch1x1 == 24 and spec.blocks[1].ch3x3 == 16  # the rest of the block kept
    assert spec.head[-1].out == "num_classes"


def test_patching_thousands_of_entries_costs_linear_time_and_keeps_locations(tmp_path):
    """A child patching every one of 10,000 entries by name, and removing some: each patch
    used to scan every location of the document (seconds at 3,000, growing with the square;
    issue 26). The error after the removals is still at the child's line for that entry."""
    import time

    count = 10_000
    base = ["format: 1", "name: big", "input: {channels: 3, height: 8, width: 8}", "num_classes: 10"]
    base += ["stem: []", "blocks:"] + [
        f"  - {{name: c{i}, kind: conv, out: 4, kernel: 1}}" for i in range(count)
    ]
    (tmp_path / "base.yaml").write_text("\n".join(base) + "\n")
    patches = [f"  c{i}: {{out: 5}}" if i % 1000 else f"  c{i}: null" for i in range(count - 1)]
    child = ["extends: base.yaml", "name: child", "blocks:", *patches, f"  c{count - 1}: {{out: -1}}"]
    (tmp_path / "child.yaml").write_text("\n".join(child) + "\n")
    start = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(tmp_path / "child.yaml")
    assert time.perf_counter() - start < 20
    (problem,) = caught.value.problems
    assert problem.file.endswith("child.yaml") and problem.line == len(child)
    assert problem.path == ("blocks", count - 1 - count // 1000, "out")


def test_null_removes_a_key_and_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", SMALL)
    child = write(
        tmp_path,
        "child.yaml",
        "extends: base.yaml\nblocks:\n  mix: {ch3x3red: null, ch5x5red: null, pool_proj: null}\n"
        "head: [{kind: flatten}, {kind: linear, out: 3}]\n",
    )
    spec = archbuilder.load_spec(child)
    assert spec.blocks[1].ch3x3red is None and spec.blocks[1].pool_proj is None  # now a naive module
    assert [layer.kind for layer in spec.head] == ["flatten", "linear"]


def test_extends_is_relative_to_the_including_file_and_chains(tmp_path):
    write(tmp_path, "models/base.yaml", SMALL)
    write(tmp_path, "models/mid.yaml", "extends: base.yaml\nnum_classes: 5\n")
    leaf = write(tmp_path, "experiments/leaf.yaml", "extends: ../models/mid.yaml\nname: leaf\n")
    spec = archbuilder.load_spec(leaf, allowed_roots=[tmp_path / "models"])  # outside leaf's folder
    assert (spec.name, spec.num_classes, spec.input.height) == ("leaf", 5, 16)


def test_errors_point_into_the_file_that_has_them(tmp_path):
    write(tmp_path, "base.yaml", SMALL.replace("ch3x3: 16", "ch3x3: -16"))
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nblocks:\n  stem: {out: 0}\n  nope: {out: 3}\n")
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(child)
    problems = {(Path(p.file).name, p.line, p.path[-1]) for p in caught.value.problems}
    assert problems == {
        ("child.yaml", 4, "nope"),  # the patch that names no entry
        ("child.yaml", 3, "out"),  # the child's bad value
        ("base.yaml", 6, "ch3x3"),  # the base's bad value, in the base
    }
    assert "no entry named 'nope' to override; entries: stem, mix, pool" in str(caught.value)


def test_extends_cycle_is_reported_with_its_chain(tmp_path):
    first = write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(SpecError, match=r"extends cycle: .*a\.yaml → .*b\.yaml → .*a\.yaml"):
        archbuilder.load_spec(first)


def test_extends_missing_file(tmp_path):
    child = write(tmp_path, "child.yaml", "name: x\nextends: gone.yaml\n")
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(child)
    problem = caught.value.problems[0]
    assert (Path(problem.file).name, problem.line) == ("child.yaml", 2)
    assert "extends 'gone.yaml': no such file" in problem.message


def test_overrides_as_strings_or_mapping():
    spec = archbuilder.load_spec(
        GOOGLENET, overrides=["num_classes=10", "blocks.3a.ch1x1=32", "input.height=160"]
    )
    assert (spec.num_classes, spec.blocks[0].ch1x1, spec.input.height) == (10, 32, 160)
    spec = archbuilder.load_spec(GOOGLENET, overrides={"stem.0.kernel": [5, 5], "aux_heads.aux2": None})
    assert spec.stem[0].kernel == (5, 5) and [head.name for head in spec.aux_heads] == ["aux1"]


def test_bad_overrides_are_spec_errors():
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(
            GOOGLENET, overrides=["blocks.3z.ch1x1=3", "blocks.3a.ch1x1=wide", "num_classes"]
        )
    text = str(caught.value)
    assert "override 'num_classes' is not KEY.PATH=VALUE" in text


def test_bad_override_values_are_located_at_the_override():
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(GOOGLENET, overrides=["blocks.3z.ch1x1=3", "blocks.3a.ch1x1=wide"])
    messages = [str(problem) for problem in caught.value.problems]
    assert any(m.startswith("--set blocks.3z.ch1x1: blocks.3z: no entry named '3z'") for m in messages)
    assert any(
        m.startswith("--set blocks.3a.ch1x1: blocks.0.ch1x1: input should be a valid integer")
        for m in messages
    )


def test_smaller_input_revalidates_and_names_the_block_that_collapses():
    cifar = archbuilder.load_spec(GOOGLENET, overrides=["input.height=32", "input.width=32"])
    assert archbuilder.lower(cifar).op("5b.concat").shape == (1024, 1, 1)
    with pytest.raises(SpecError, match=r"aux_heads\.0\.layers\.0: aux1\.pool: input height 2"):
        archbuilder.load_spec(
            ROOT / "specs" / "googlenet-v1-original.yaml", overrides=["input.height=32", "input.width=32"]
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(8, 8), (24, 24), (2, 8), (30, 32), (13, 16), (11.9, 16), (20, 24), (100, 104), (36, 40)],
)
def test_make_divisible_by_hand(value, expected):
    assert make_divisible(value, 8) == expected


def test_width_multiplier_scales_every_conv():
    ir = archbuilder.lower(archbuilder.load_spec(GOOGLENET, overrides={"scale.width": 0.5}))
    assert ir.op("3a.concat").shape == (32 + 64 + 16 + 16, 28, 28)
    assert ir.op("5b.concat").shape == (192 + 192 + 64 + 64, 7, 7)
    assert ir.op("aux1.conv").shape == (64, 4, 4)
    assert ir.op("aux1.fc1").shape == (1024,)  # linear widths are not channels: unchanged
    unscaled = archbuilder.summarize(archbuilder.load_spec(GOOGLENET, overrides={"scale.width": 1.0}))
    assert unscaled.params == 13_393_352


def test_scaled_model_builds_with_the_summarized_size():
    spec = archbuilder.load_spec(
        GOOGLENET, overrides={"scale.width": 0.25, "input.height": 64, "input.width": 64}
    )
    model = archbuilder.build(spec)
    assert sum(p.numel() for p in model.parameters()) == archbuilder.summarize(spec).params


def test_repeat_and_depth_multiplier(tmp_path):
    text = SMALL.replace(
        "{name: stem, kind: conv, out: 16, kernel: 3, padding: 1}",
        "{name: stem, kind: conv, out: 16, kernel: 3, padding: 1, repeat: 2}",
    )
    text += "aux_heads: [{name: aux, tap: stem, loss_weight: 0.5, layers: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: 2}]}]\n"
    ir = archbuilder.lower(archbuilder.load_spec(text))
    assert [e.name for e in ir.top_level if e.section == "blocks"] == ["stem_1", "stem_2", "mix", "pool"]
    assert ir.op("stem_2").attrs["in_channels"] == 16
    assert list(ir.graph.predecessors("aux.global_avgpool1")) == ["stem_2"]  # the tap reads the last copy
    deeper = archbuilder.lower(archbuilder.load_spec(text, overrides={"scale.depth": 2}))
    assert [e.name for e in deeper.top_level if e.section == "blocks"][:4] == [
        "stem_1",
        "stem_2",
        "stem_3",
        "stem_4",
    ]
    assert list(deeper.graph.predecessors("aux.global_avgpool1")) == ["stem_4"]
    model = archbuilder.build(archbuilder.load_spec(text)).train()
    import torch

    outputs = model(torch.randn(2, 3, 16, 16))
    assert outputs.aux[0].shape == (2, 2)


def test_set_works_on_every_command(tmp_path):
    def archbuild(*args):
        return subprocess.run(
            [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=ROOT
        )

    summary = archbuild("summary", "specs/googlenet.yaml", "--json", "--set", "num_classes=10")
    fc = next(b for b in json.loads(summary.stdout)["blocks"] if b["name"] == "fc")
    assert fc["params"] == 1024 * 10 + 10
    assert archbuild("validate", "specs/googlenet.yaml", "--set", "blocks.3a.ch1x1=0").returncode == 1
    render = archbuild(
        "render", "specs/googlenet.yaml", "-o", str(tmp_path / "g.dot"), "--set", "blocks.3a.ch1x1=32"
    )
    assert render.returncode == 0 and "3a" in (tmp_path / "g.dot").read_text()
    assert "conv 1×1 → 32" in (tmp_path / "g.dot").read_text()


def test_a_repeated_name_inside_a_block_does_not_hijack_a_tap():
    text = SMALL.replace(
        "{name: stem, kind: conv, out: 16, kernel: 3, padding: 1}",
        "{name: c, kind: conv, out: 16, kernel: 3, padding: 1, repeat: 2}\n"
        "  - {name: res, kind: branches, merge: add, branches: [{name: skip}, "
        "{name: body, layers: [{name: c, kind: conv, out: 16, kernel: 1, repeat: 3}]}]}",
    )
    text += "aux_heads: [{name: aux, tap: c, loss_weight: 0.5, layers: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: 2}]}]\n"
    ir = archbuilder.lower(archbuilder.load_spec(text))
    assert ir.aux_heads[0].tap == "c_2"
