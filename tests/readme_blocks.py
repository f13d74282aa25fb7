"""The README's quick start and Python example, as the tests run them."""

from __future__ import annotations

import re
import shlex

from .conftest import ROOT


def _section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def quick_start_commands() -> list[list[str]]:
    """The ``archbuild`` commands of the quick start, one argument list each."""
    block = re.search(r"```bash\n(.*?)```", _section("Quick start"), re.DOTALL).group(1)
    return [shlex.split(part) for part in block.strip().split("&&")]


def python_example() -> str:
    """The README's first Python block."""
    return re.search(r"```python\n(.*?)```", _section("Quick start"), re.DOTALL).group(1)
