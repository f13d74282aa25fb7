"""The archbuild command, run as a user runs it: a subprocess, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archbuilder.cli.main import main

from .conftest import GOOGLENET, ROOT

BROKEN = ROOT / "tests" / "data" / "broken"


def archbuild(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_validate_ok():
    result = archbuild("validate", str(GOOGLENET))
    assert result.returncode == 0, result.stderr
    assert "ok (googlenet, 13,393,352 parameters)" in result.stdout


def test_validate_reports_every_invalid_file_and_exits_1():
    result = archbuild(
        "validate", str(GOOGLENET), str(BROKEN / "unknown_keys.yaml"), str(BROKEN / "bad_tap.yaml")
    )
    assert result.returncode == 1
    assert "ok (googlenet" in result.stdout
    assert "7 problems in spec" in result.stderr and "2 problems in spec" in result.stderr
    assert "Traceback" not in result.stderr


BROKEN_SPECS = sorted(BROKEN.glob("*.yaml"))


def test_validate_reports_every_broken_spec_without_a_traceback():
    # `archbuild validate tests/data/broken/*.yaml`: one process, each file's problems named
    result = archbuild("validate", *map(str, BROKEN_SPECS))
    assert result.returncode == 1 and not result.stdout
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert [path.name for path in BROKEN_SPECS if f"broken/{path.name}:" not in result.stderr] == []


@pytest.mark.parametrize("path", BROKEN_SPECS, ids=lambda p: p.stem)
def test_summary_of_a_broken_spec_is_a_located_error(path, capsys):
    # In this process (`validate` above runs the subprocess): an uncaught exception fails here.
    assert main(["summary", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert f"{path.parent.name}/" in err  # the problem names its file


@pytest.mark.parametrize("args", [("--debug", "validate"), ("validate", "--debug"), ("summary", "--debug")])
def test_debug_shows_a_traceback(args):
    result = archbuild(*args, str(BROKEN / "bad_tap.yaml"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "did you mean '4a'" in result.stderr


def test_usage_errors_exit_2():
    assert archbuild().returncode == 2
    assert archbuild("validate").returncode == 2
    assert archbuild("frobnicate", str(GOOGLENET)).returncode == 2
    assert archbuild("build", str(GOOGLENET), "--batch", "0").returncode == 2


def test_missing_file_exits_1():
    result = archbuild("summary", "no/such/spec.yaml")
    assert result.returncode == 1
    assert "no/such/spec.yaml: (top level): no such file" in result.stderr


def test_summary_json():
    result = archbuild("summary", str(GOOGLENET), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    # Parameters: the Caffe model's (tests/caffe_googlenet.py) plus batch norm; MACs: torch's
    # FlopCounterMode over one training-mode forward of the built model, halved
    # (test_summary_macs_are_what_torch_counts below).
    assert data["total"] == {"params": 13_393_352, "macs": 1_591_044_096}
    assert data["without_aux"] == {"params": 7_013_112, "macs": 1_582_671_872}
    names = [block["name"] for block in data["blocks"]]
    assert names[:6] == ["conv1", "pool1", "conv2_reduce", "conv2", "pool2", "3a"]
    assert names[-2:] == ["aux1", "aux2"]
    block_3a = data["blocks"][5]
    assert block_3a == {
        "name": "3a",
        "kind": "inception",
        "section": "blocks",
        "out_shape": [256, 28, 28],
        "params": 164_432,
        "macs": 128_049_152,
    }
    assert sum(block["params"] for block in data["blocks"]) == data["total"]["params"]


def test_summary_table():
    result = archbuild("summary", str(GOOGLENET))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.startswith("4e "))
    assert row.split() == ["4e", "inception", "832×14×14", "870,400", "169,996,288"]
    assert any(line.startswith("Total params:") and line.endswith("13,393,352") for line in lines)


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_build_with_batch_1_skips_the_training_pass(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\ninput: {channels: 1, height: 4, width: 4}\nnum_classes: 3\n"
        "blocks: [{kind: flatten}, {kind: batchnorm}, {kind: linear, out: num_classes}]\n"
    )
    result = archbuild("build", str(spec), "--batch", "1")
    assert result.returncode == 0, result.stderr
    assert "eval output: (1, 3)" in result.stdout and "train output: skipped" in result.stdout


@pytest.mark.slow
def test_build_runs_a_forward_pass():
    result = archbuild("build", str(GOOGLENET), "--num-classes", "10")
    assert result.returncode == 0, result.stderr
    assert "eval output: (2, 10)" in result.stdout
    assert (
        "aux1 (loss weight 0.3): (2, 10)" in result.stdout
        and "aux2 (loss weight 0.3): (2, 10)" in result.stdout
    )


def test_build_refuses_a_model_over_the_memory_limit():
    result = archbuild("build", str(GOOGLENET), "--max-param-gib", "0.01")
    assert result.returncode == 1
    assert "13,393,352 parameters (51.1 MiB as float32), over the limit of 10.2 MiB" in result.stderr


def test_summary_macs_are_what_torch_counts():
    """The figures above, counted by torch over the convolutions and matrix products that
    actually run: with aux heads in training mode, without them in eval mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import archbuilder

    model = archbuilder.build(GOOGLENET)
    counted = {}
    for mode, train in (("total", True), ("without_aux", False)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.train(train)(torch.randn(1, 3, 224, 224))
        counted[mode] = counter.get_total_flops() // 2
    assert counted == {"total": 1_591_044_096, "without_aux": 1_582_671_872}
