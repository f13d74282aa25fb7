"""Spec errors: every problem in a spec, each located in its source file."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from archbuilder.core.escaping import for_terminal as escape
from archbuilder.core.files import shipped_name  # one rule for text shown in a terminal

__all__ = [
    "Problem",
    "RenderError",
    "SpecError",
    "UnsupportedFormat",
    "UnsupportedOnThisCPU",
    "did_you_mean",
    "escape",
    "format_path",
]

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """Render a key path the way a user reads it: ``blocks.3.ch1x1``."""
    return ".".join(str(part) for part in path) if path else "(top level)"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" suffix for a near-miss name, or an empty string.

    A match that does not start with the same letter must be a close one (``true`` is not
    a misspelt ``stride``).
    """
    by_lower = {candidate.lower(): candidate for candidate in sorted(set(candidates), reverse=True)}
    lowered = str(word).lower()
    for match in difflib.get_close_matches(lowered, list(by_lower), n=3, cutoff=0.6):
        close = difflib.SequenceMatcher(None, lowered, match).ratio() >= 0.8
        if close or match[:1] == lowered[:1]:
            return f" (did you mean '{by_lower[match]}'?)"
    return ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is and what to do about it."""

    path: KeyPath
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        # A spec named by its shipped name is shown by that name, not by the install folder
        # the user never typed; any other file as given.
        where = (shipped_name(self.file) if self.file else None) or self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        return escape(f"{where}: {format_path(self.path)}: {self.message}")


class RenderError(Exception):
    """A diagram could not be produced; the message says why and what to do."""


class UnsupportedFormat(RenderError, ValueError):
    """The output file's extension names no format archbuilder writes."""


class UnsupportedOnThisCPU(RuntimeError):
    """What was asked cannot run on this machine; the message names what is missing and what
    to use instead (``archbuild`` prints it and exits with status 2)."""


class SpecError(ValueError):
    """A spec is invalid. ``problems`` lists every problem found, in source order."""

    def __init__(self, problems: Sequence[Problem]):
        if not problems:
            raise ValueError("SpecError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(
            sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.column or 0))
        )
        count = len(self.problems)
        header = f"{count} problem{'s' if count > 1 else ''} in spec:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))
