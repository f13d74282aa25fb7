"""One escaping rule per output language, for every text that comes from a spec or an imported file.

Names, comments, descriptions and file names are someone else's text. Whatever they hold, it
stays text in what archbuilder writes: it never becomes markup (DOT, SVG, HTML), YAML (a line
break ends a comment), a terminal control sequence, or a second ``<script>`` in a page.
Every writer of user-derived text calls one of these functions; ``tests/test_hostile_writers.py``
enumerates the writers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "LINE_BREAKS",
    "for_dot",
    "for_html",
    "for_script_json",
    "for_terminal",
    "for_xml_text",
    "yaml_comment",
    "yaml_header",
]

# Every character str.splitlines() breaks on: YAML readers and editors differ on which end a
# line (YAML 1.1 readers take U+0085, U+2028 and U+2029), so none may reach a comment raw.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# Characters XML 1.0 forbids outright (C0 controls but tab, LF, CR; surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def for_terminal(text: str) -> str:
    """``text`` with every non-printable character (line breaks, ESC, BEL, CR, bidi controls)
    written as a Python repr writes it (``\\n``, ``\\x1b``): nothing can forge a line, recolour
    or retitle the terminal, or move its cursor."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode() for char in text)


def yaml_comment(text: str) -> str:
    """``text`` as the body of one YAML comment line: every line break and other non-printable
    character escaped, so the comment cannot end early and let the rest be read as YAML."""
    return for_terminal(text)


def yaml_header(lines: Iterable[str]) -> str:
    """Comment lines (``# …``, one per item, each made one line by :func:`yaml_comment`) and
    the newline after the last; "" for no lines."""
    return "".join(f"# {yaml_comment(line)}".rstrip() + "\n" for line in lines)


def for_dot(text: str) -> str:
    """``text`` as a DOT double-quoted string, quotes included. Never an HTML-string label
    (``<…>``): Graphviz reads a quoted ``<`` as a character. Line breaks become ``\\n`` text."""
    escaped = for_terminal(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def for_html(text: str) -> str:
    """``text`` as HTML/XML character data or an attribute value: ``& < > " '`` as entities,
    control characters escaped as text (XML 1.0 has no form for most of them)."""
    return (
        for_terminal(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def for_xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold at all written as ``\\xNN`` text, for
    a finished XML document (an SVG) whose markup is already escaped."""
    return _NOT_XML.sub(
        lambda match: match.group().encode("unicode_escape", "backslashreplace").decode(), text
    )


def for_script_json(data: Any) -> str:
    """``data`` as JSON to embed in ``<script type="application/json">``: ``<``, ``>``, ``&``
    and U+2028/U+2029 as ``\\u`` escapes, so no ``</script>``, ``<!--`` or line separator in
    the data changes how the browser splits the page, and ``JSON.parse`` gives ``data`` back."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text
