"""What a target is: a name, and a function that renders the outputs it owns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tools.docs import RESULTS, ROOT


@dataclass(frozen=True)
class Tree:
    """Where a run reads the docs it checks or writes (``root``) and the benchmark logs."""

    root: Path = ROOT
    results: Path = RESULTS

    def read(self, path: str) -> str | None:
        """The text of ``path`` (relative to ``root``), or None if there is no such file."""
        file = self.root / path
        return file.read_text(encoding="utf-8") if file.is_file() else None


class Output(NamedTuple):
    """One generated text: a whole file (``region`` None) or one region of it."""

    path: str  # relative to the tree's root, with forward slashes
    region: str | None
    text: str

    @property
    def label(self) -> str:
        return self.path if self.region is None else f"{self.path} [{self.region}]"


@dataclass(frozen=True)
class Target:
    name: str
    summary: str  # what it writes, for --list
    render: Callable[[Tree], Sequence[Output]]
    slow: bool = False  # seconds rather than a moment: the test suite checks it under the slow mark
