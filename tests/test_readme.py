"""The README's quick start runs as written (after its `pip install .`)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

from .conftest import ROOT


def quick_start_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    commands = [shlex.split(part) for part in block.strip().split("&&")]
    assert commands[0] == ["pip", "install", "."]
    return commands[1:]


def test_quick_start_commands_succeed(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    commands = quick_start_commands()
    assert [command[:2] for command in commands] == [
        ["archbuild", "validate"],
        ["archbuild", "summary"],
        ["archbuild", "render"],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "archbuilder", *command[1:]], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "googlenet.svg").read_text().count("<svg") == 1
