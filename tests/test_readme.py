"""The README's quick start and Python example run as written, from any folder."""

from __future__ import annotations

import subprocess
import sys

from .readme_blocks import python_example, quick_start_commands


def test_quick_start_commands_succeed(tmp_path):
    commands = quick_start_commands()
    assert [command[:2] for command in commands] == [
        ["archbuild", "list"],
        ["archbuild", "summary"],
        ["archbuild", "render"],
    ]
    for command in commands:  # in an empty folder: the spec is addressed by name
        result = subprocess.run(
            [sys.executable, "-m", "archbuilder", *command[1:]], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "googlenet.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_python_example_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", python_example()], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Total params:" in result.stdout and "13,393,352" in result.stdout
