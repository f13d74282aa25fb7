"""``archbuild profile`` / ``archbuilder.profile``: each block's and layer's real time.

Truths: the end-to-end step timed by the profiler apart from its hooks (the blocks' times must
add up to it within 10 %, as issue 29 asks); the IR's ids; /proc/cpuinfo's model name; the
JSON reader of the torch-free overlay module.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import archbuilder
from archbuilder.analysis.overlay import read_profile
from archbuilder.core.machine import cpu_model

from .conftest import GOOGLENET, ROOT, SPECS

DIGITS = SPECS / "inception-digits.yaml"


@pytest.fixture
def one_thread():
    """One torch thread: the tests share two cores with each other (and whatever else runs),
    and several threads waiting on each other make single steps' times erratic there."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("spec", "batch", "train"),
    [(DIGITS, 16, False), (GOOGLENET, 1, False), (DIGITS, 16, True)],
    ids=["inception-digits", "googlenet", "inception-digits-train"],
)
def test_the_blocks_add_up_to_the_end_to_end_time_within_ten_percent(spec, batch, train, one_thread):
    # Up to three measurements: another process on the shared cores can upset one, but an
    # attribution that loses or counts time twice misses every time.
    for _ in range(3):
        profile = archbuilder.profile(spec, batch=batch, train=train, repeats=20)
        if abs(profile.blocks_ms - profile.end_to_end_ms) <= 0.10 * profile.end_to_end_ms:
            break
    ir = archbuilder.lower(archbuilder.load_spec(spec))
    body = [top.name for top in ir.top_level if top.section != "aux"]
    expected = body + ([head.name for head in ir.aux_heads] if train else [])
    assert sorted(profile.blocks) == sorted(expected)  # aux heads run in training only
    assert all(ms > 0 for ms in profile.blocks.values())
    assert abs(profile.blocks_ms - profile.end_to_end_ms) <= 0.10 * profile.end_to_end_ms, profile.table()


def test_every_conv_is_timed_and_the_json_reads_back(tmp_path):
    spec = archbuilder.load_spec(DIGITS)
    ir = archbuilder.lower(spec)
    profile = archbuilder.profile(spec, batch=2, repeats=2, warmup=1)
    aux = {head.name for head in ir.aux_heads}  # not run in eval mode
    convs = {op.id for op in ir.ops() if op.kind == "conv" and op.item not in aux}
    assert convs <= set(profile.layers) <= set(ir.graph.nodes)
    assert profile.mode == "eval" and profile.batch == 2 and profile.machine["cpu"] == cpu_model()
    data = json.loads(profile.to_json())
    assert data["format"] == "archbuilder-profile" and data["version"] == 1
    written = tmp_path / "p.json"
    written.write_text(profile.to_json())
    assert read_profile(written, spec, ir).to_dict() == profile.to_dict()


def test_the_cli_table_names_the_machine_and_render_overlays_its_json(tmp_path):
    out = tmp_path / "prof.json"

    def archbuild(*args):
        return subprocess.run(
            [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=ROOT
        )

    result = archbuild("profile", str(DIGITS), "--repeats", "2", "-o", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "inception-digits: forward, batch 1, fp32, mean of the middle half of 2 repeats"
    assert lines[1].startswith(f"machine: {cpu_model()}, ")
    assert any(line.startswith("(between blocks)") for line in lines)
    assert lines[-1] == f"wrote {out}"
    assert str(tmp_path) not in out.read_text()  # no path of this machine in the file
    drawn = archbuild("render", str(DIGITS), "--overlay", str(out), "-o", str(tmp_path / "d.png"))
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
