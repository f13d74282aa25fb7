"""examples/train_digits.py: single-process training, resuming, and DDP with two processes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys

import pytest
import torch

import archbuilder

from .conftest import ROOT

SCRIPT = ROOT / "examples" / "train_digits.py"
TINY = ["--set", "scale.width=0.25", "--no-progress", "--threads", "1"]  # 30k parameters


@pytest.fixture
def train_digits():
    """The example as a module; its main() changes torch's thread count, which is restored."""
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)


def digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor by name, computed here rather than by the script."""
    sha = hashlib.sha256()
    for name in sorted(state):
        sha.update(name.encode())
        sha.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tmp_path):
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"),
        *(str(SCRIPT), "--epochs", "2", *TINY, "--metrics", "m.json", "--checkpoint", "c.pt"),
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["world_size"] == 2
    first, second = metrics["rank_digests"]
    assert first == second  # every parameter and batch-norm buffer equal on both ranks
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2  # rank 0 alone logs each epoch

    checkpoint = archbuilder.load_checkpoint(tmp_path / "c.pt")  # written by rank 0
    assert checkpoint.epoch == 1 and list(checkpoint.overrides) == ["scale.width=0.25"]
    assert digest(checkpoint.model.state_dict()) == first


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, train_digits):
    straight, half = tmp_path / "straight.pt", tmp_path / "half.pt"
    assert train_digits.main(["--epochs", "2", *TINY, "--checkpoint", str(straight)]) == 0
    assert train_digits.main(["--epochs", "2", "--stop-after", "1", *TINY, "--checkpoint", str(half)]) == 0
    resume = [
        "--resume",
        str(half),
        "--epochs",
        "2",
        "--no-progress",
        "--threads",
        "1",
        "--checkpoint",
        str(half),
    ]
    assert train_digits.main(resume) == 0

    expected, resumed = archbuilder.load_checkpoint(straight), archbuilder.load_checkpoint(half)
    assert resumed.epoch == 1 and [e["epoch"] for e in resumed.extra["history"]] == [1, 2]
    assert resumed.spec == expected.spec  # the spec came from the checkpoint, --set included
    assert digest(resumed.model.state_dict()) == digest(expected.model.state_dict())


def test_resume_refuses_a_new_spec(train_digits, capsys):
    with pytest.raises(SystemExit):
        train_digits.main(["--resume", "x.pt", "--set", "num_classes=3"])
    assert "leave out --spec and --set" in capsys.readouterr().err


@pytest.mark.slow
def test_the_default_run_reaches_97_percent(digits_default_run):
    # The documented target: ≥ 97% test accuracy with the shipped spec and default settings.
    result, checkpoint = digits_default_run
    assert len(result["history"]) == 10
    assert result["test_accuracy"] >= 0.97
    assert archbuilder.load_checkpoint(checkpoint).epoch == 9  # the last of the ten, written
