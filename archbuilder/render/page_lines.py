"""The spec lines an interactive page shows: each spec file named once (by
:func:`~archbuilder.core.files.shown_path`, never by the absolute path of this machine), and the
lines its nodes were written on, read again as the loader reads them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from archbuilder.core.errors import KeyPath
from archbuilder.core.files import read_regular, shown_path
from archbuilder.spec.load import MAX_SPEC_BYTES
from archbuilder.spec.source import Source

__all__ = ["SpecLines"]

SNIPPET_GAP = 3  # key lines further apart than this start a new snippet (a template and its use)
MAX_SNIPPET = 40


class SpecLines:
    """The files and lines a page cites, gathered as its nodes ask for them."""

    def __init__(self, source: Source):
        self.source = source
        self.file_ids: dict[str, int] = {}  # spec file -> its index in the page's "files"
        self.lines: dict[int, dict[int, str]] = {}  # file index -> line number -> text, only lines shown
        self.texts: dict[str, list[str] | None] = {}

    def files(self) -> list[str]:
        """The files cited, as the page names them, in the order of their indices."""
        return [shown_path(file) for file in self.file_ids]

    def shown(self) -> dict[str, dict[str, str]]:
        """The lines cited: file index -> line number -> text (JSON keys)."""
        return {
            str(index): {str(k): v for k, v in sorted(lines.items())} for index, lines in self.lines.items()
        }

    def snippets(self, paths: Iterable[KeyPath]) -> list[dict[str, Any]]:
        """Where ``paths`` were written: per file (its index), runs of nearby lines, their text kept."""
        prefix = _common_prefix([path for path in paths if path and path != ("input",)])
        if not prefix:
            return []
        found: dict[str, set[int]] = {}
        for key, (file, line, _) in self.source.positions.items():
            if file and line and key[: len(prefix)] == prefix:
                found.setdefault(file, set()).add(line)
        result = []
        for file, numbers in found.items():
            text = self.file_lines(file)
            index = self.file_ids.setdefault(file, len(self.file_ids))
            for first, last in _runs(sorted(numbers)):
                last = min(last, first + MAX_SNIPPET - 1)
                if text is not None:
                    shown = self.lines.setdefault(index, {})
                    for number in range(first, min(last, len(text)) + 1):
                        shown[number] = text[number - 1]
                result.append({"file": index, "first": first, "last": last})
        return result

    def file_lines(self, file: str) -> list[str] | None:
        """The lines of a spec file, read again as the loader reads it (a regular file, capped)."""
        if file not in self.texts:
            try:
                self.texts[file] = read_regular(file, max_bytes=MAX_SPEC_BYTES).decode().splitlines()
            except (OSError, ValueError):  # UnreadableFile, UnicodeDecodeError: gone or changed
                self.texts[file] = None  # `--set`, inline text: the location alone is shown
        return self.texts[file]

    def width_key(self, path: KeyPath) -> dict[str, Any] | None:
        """Where the key that sets this op's width is written, as a span of one shown line: the
        role field of a block written by role (``ch3x3: 208``), else the layer's ``out``; None
        unless that line is one a snippet shows."""
        if not path:
            return None
        key_path = path if isinstance(path[-1], str) and path[-1] != "kind" else (*path, "out")
        file, line, column = self.source.positions.get(key_path, (None, None, None))
        text = self.file_lines(file) if file and line and column else None
        if text is None or line > len(text) or file not in self.file_ids:
            return None
        written = text[line - 1]
        start = column - 1
        if not written[start:].startswith(f"{key_path[-1]}:"):
            return None
        end = start + len(key_path[-1]) + 1
        while end < len(written) and written[end] not in ",}]#":
            end += 1
        index = self.file_ids[file]
        if line not in self.lines.get(index, {}):
            return None
        end = len(written[:end].rstrip())
        # offsets as the page's JavaScript counts them: UTF-16 code units
        start, end = (len(written[:at].encode("utf-16-le")) // 2 for at in (start, end))
        return {"file": index, "line": line, "start": start, "end": end}


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and number - runs[-1][1] <= SNIPPET_GAP:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _common_prefix(paths: list[KeyPath]) -> KeyPath:
    if not paths:
        return ()
    prefix = paths[0]
    for path in paths[1:]:
        end = 0
        while end < min(len(prefix), len(path)) and prefix[end] == path[end]:
            end += 1
        prefix = prefix[:end]
    return prefix
