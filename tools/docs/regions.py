"""The one marker format of generated regions in the docs.

A region is the text between its two marker lines, both placed by hand where the prose needs it:

    <!-- generated:NAME begin (python -m tools.docs; do not edit) -->
    ...
    <!-- generated:NAME end -->

NAME is unique within its file (``performance``, ``fields/Conv``, ``sizes/googlenet.yaml``).
Only the text between the lines is generated; the lines themselves are never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REGION = re.compile(
    r"^<!-- generated:(?P<name>[\w./-]+) begin \(python -m tools\.docs; do not edit\) -->\n"
    r"(?P<body>.*?)^<!-- generated:(?P=name) end -->$",
    re.MULTILINE | re.DOTALL,
)


def begin_line(name: str) -> str:
    return f"<!-- generated:{name} begin (python -m tools.docs; do not edit) -->"


def end_line(name: str) -> str:
    return f"<!-- generated:{name} end -->"


def regions(document: str, prefix: str = "") -> dict[str, str]:
    """The bodies of ``document``'s regions whose names start with ``prefix``, by name without it."""
    return {
        match["name"].removeprefix(prefix): match["body"]
        for match in REGION.finditer(document)
        if match["name"].startswith(prefix)
    }


def replace(document: str, bodies: Mapping[str, str], where: str = "the document") -> str:
    """``document`` with the body of each region named in ``bodies`` replaced; a name without
    its two lines in ``document`` is an error naming ``where``."""
    missing = [name for name in bodies if name not in regions(document)]
    if missing:
        lines = " and ".join(f"{begin_line(name)!r} … {end_line(name)!r}" for name in missing)
        raise ValueError(f"{where} needs the lines {lines}")

    def body(match: re.Match) -> str:
        name = match["name"]
        text = bodies.get(name, match["body"])
        return f"{begin_line(name)}\n{text}{end_line(name)}"

    return REGION.sub(body, document)
