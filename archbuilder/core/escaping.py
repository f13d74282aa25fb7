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
    "DotLabel",
    "dot_value",
    "for_dot",
    "for_dot_record",
    "for_dot_text",
    "for_html",
    "for_html_document",
    "for_script_json",
    "for_terminal",
    "for_terminal_lines",
    "for_xml_text",
    "yaml_comment",
    "yaml_header",
]

# Every character str.splitlines() breaks on: YAML readers and editors differ on which end a
# line (YAML 1.1 readers take U+0085, U+2028 and U+2029), so none may reach a comment raw.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# Characters XML 1.0 forbids outright (C0 controls but tab, LF, CR; surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# DOT's unquoted IDs (as the graphviz package writes them) and its keywords, which must be quoted.
_DOT_ID = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*|-?(\.[0-9]+|[0-9]+(\.[0-9]*)?)")
_DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
_RECORD_SYNTAX = re.compile(r"[{}|<>]")


def for_terminal(text: str) -> str:
    """``text`` with every non-printable character (line breaks, ESC, BEL, CR, bidi controls)
    written as a Python repr writes it (``\\n``, ``\\x1b``): nothing can forge a line, recolour
    or retitle the terminal, or move its cursor."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode() for char in text)


def for_terminal_lines(text: str) -> str:
    """Multi-line ``text`` for a terminal: each line (split at ``\\n`` only) as
    :func:`for_terminal` shows it, so a CR or any other line break in the text is shown too."""
    return "\n".join(map(for_terminal, text.split("\n")))


def yaml_comment(text: str) -> str:
    """``text`` as the body of one YAML comment line: every line break and other non-printable
    character escaped, so the comment cannot end early and let the rest be read as YAML."""
    return for_terminal(text)


def yaml_header(lines: Iterable[str]) -> str:
    """Comment lines (``# …``, one per item, each made one line by :func:`yaml_comment`) and
    the newline after the last; "" for no lines."""
    return "".join(f"# {yaml_comment(line)}".rstrip() + "\n" for line in lines)


def for_dot_text(text: str) -> str:
    """``text`` as literal characters inside a Graphviz label (an escString), before quoting:
    control characters and line breaks shown as ``\\x1b``-style text, ``\\`` doubled (no ``\\N``,
    ``\\G`` or ``\\l`` escape fires) and ``&`` as ``&amp;`` (Graphviz reads entities in labels,
    and passes a ``&#27;`` on into its SVG, which no XML parser reads)."""
    return for_terminal(text).replace("&", "&amp;").replace("\\", "\\\\")


def for_dot_record(text: str) -> str:
    """``text`` as one field of a Graphviz record label: :func:`for_dot_text`, and the record
    syntax (``{ } | < >``) backslash-escaped, so the text opens no field or port."""
    return _RECORD_SYNTAX.sub(r"\\\g<0>", for_dot_text(text))


def for_dot(text: str) -> str:
    """``text`` as a DOT double-quoted string, quotes included, that Graphviz shows as ``text``
    (see :func:`for_dot_text`). Never an HTML-string label (``<…>``): Graphviz reads a quoted
    ``<`` as a character."""
    return _quoted(for_dot_text(text))


class DotLabel(str):
    """A label archbuilder assembled in Graphviz's label syntax (record fields, line breaks)
    from pieces each escaped by :func:`for_dot_text` or :func:`for_dot_record`."""

    __slots__ = ()


def dot_value(value: str) -> str:
    """``value`` as a DOT ID or attribute value: a :class:`DotLabel` quoted as assembled, any
    other text as :func:`for_dot` writes it, bare where DOT reads it unquoted as the same ID."""
    if isinstance(value, DotLabel):
        return _quoted(value)
    if _DOT_ID.fullmatch(value) and value.lower() not in _DOT_KEYWORDS:
        return value
    return for_dot(value)


def _quoted(label: str) -> str:
    # Every backslash in ``label`` is an escape Graphviz reads (a user's are doubled), so
    # only the quote character needs one to stay inside the string.
    return '"' + label.replace('"', '\\"') + '"'


def for_html(text: str) -> str:
    """``text`` as HTML/XML character data or an attribute value: ``& < > " '`` as entities,
    control characters escaped as text (XML 1.0 has no form for most of them)."""
    return for_html_document(for_terminal(text))


def for_html_document(markup: str) -> str:
    """A finished HTML document (its own text already escaped) as the value of an attribute
    (an iframe's ``srcdoc``): ``& < > " '`` as entities, its line breaks kept."""
    return (
        markup.replace("&", "&amp;")
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
