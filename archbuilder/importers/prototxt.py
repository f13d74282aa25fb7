"""A parser for protobuf's text format as Caffe writes it (``.prototxt``), without protoc.

The result is plain data: a message is a dict from field name to a list of values (every
field may repeat in the text format), a value is a str, int, float, bool, an enum name (a
bare identifier, kept as str) or a nested message dict, which also knows the line it starts
on (for messages that say where). No schema is needed.

The work is bounded by the text: one pass over its tokens, messages nested at most
:data:`MAX_DEPTH` deep and at most :data:`MAX_MESSAGES` of them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

__all__ = ["MAX_DEPTH", "MAX_MESSAGES", "Message", "PrototxtError", "parse_prototxt"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fF]?|[-+]?inf(?:inity)?|nan)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}:<>\[\],;])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
_BOOLS = {"true": True, "false": False, "True": True, "False": False}
_CLOSE = {"{": "}", "<": ">"}
MAX_DEPTH = 64
MAX_MESSAGES = 1_000_000  # GoogLeNet's deploy file holds about 1,000; ResNet-152's about 3,000


class Message(dict):
    """One message's fields (name → list of values); ``line`` is where it starts (1 for the file)."""

    __slots__ = ("line",)

    def __init__(self, line: int = 1):
        super().__init__()
        self.line = line


class PrototxtError(ValueError):
    """The text is not valid protobuf text format; the message says where."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line, self.column = line, column


def _unquote(text: str) -> str:
    body, out, index = text[1:-1], [], 0
    if "\\" not in body:
        return body
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(_ESCAPES.get(body[index + 1], body[index + 1]))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _number(text: str) -> int | float:
    lowered = text.lower().rstrip("f") if not text.lower().endswith("inf") else text.lower()
    try:
        return int(lowered, 10)
    except ValueError:  # a fraction, an exponent, or more digits than Python converts: a float
        return float(lowered)


class _Parser:
    """A recursive-descent parser over a lazily read token stream, one token of lookahead."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [match.start() for match in re.finditer("\n", text)]
        self.stream = self._tokens()
        self.kind, self.token, self.at = "", "", 0
        self.previous = 0  # where the token before this one starts
        self.messages = 0
        self.advance()

    def _tokens(self) -> Iterator[tuple[str, str, int]]:
        for match in _TOKEN.finditer(self.text):
            kind = match.lastgroup or ""
            if kind != "space":
                yield kind, match.group(), match.start()
        yield "end", "", len(self.text)

    def advance(self) -> None:
        self.previous = self.at
        self.kind, self.token, self.at = next(self.stream)
        if self.kind == "other":
            raise self.fail(f"unexpected character {self.token!r}")

    def line(self, at: int | None = None) -> int:
        return bisect.bisect_left(self.newlines, self.at if at is None else at) + 1

    def fail(self, message: str) -> PrototxtError:
        """An error at this token, or at the last one where the text has ended."""
        at = self.previous if self.kind == "end" else self.at
        line = self.line(at)
        start = self.newlines[line - 2] + 1 if line > 1 else 0
        return PrototxtError(message, line, at - start + 1)

    def punct(self, text: str) -> bool:
        return self.kind == "punct" and self.token == text

    def message(self, close: str | None, depth: int, line: int) -> Message:
        if depth > MAX_DEPTH:
            raise self.fail(f"messages nested deeper than {MAX_DEPTH}")
        self.messages += 1
        if self.messages > MAX_MESSAGES:
            raise self.fail(f"more than {MAX_MESSAGES:,} messages; the importer reads no more")
        fields = Message(line)
        while True:
            if self.kind == "end":
                if close is not None:
                    raise self.fail(f"missing {close!r}")
                return fields
            if close is not None and self.punct(close):
                self.advance()
                return fields
            if self.kind != "ident":
                raise self.fail(f"expected a field name, found {self.token!r}")
            name, line = self.token, self.line()
            self.advance()
            fields.setdefault(name, []).extend(self.values(depth, line))
            if self.punct(",") or self.punct(";"):
                self.advance()

    def values(self, depth: int, line: int) -> list:
        if self.punct(":"):
            self.advance()
        if self.punct("["):  # a list of scalars or messages, never of lists
            self.advance()
            items = []
            while not self.punct("]"):
                if self.kind == "end":
                    raise self.fail("missing ']'")
                items.append(self.value(depth, line))
                if self.punct(","):
                    self.advance()
            self.advance()
            return items
        return [self.value(depth, line)]

    def value(self, depth: int, line: int) -> Message | str | int | float | bool:
        if self.kind == "punct" and self.token in _CLOSE:
            close = _CLOSE[self.token]
            self.advance()
            return self.message(close, depth + 1, line)
        return self.scalar()

    def scalar(self) -> str | int | float | bool:
        kind, token = self.kind, self.token
        if kind == "string":
            parts = []
            while self.kind == "string":  # adjacent strings join
                parts.append(_unquote(self.token))
                self.advance()
            return "".join(parts)
        if kind == "number":
            self.advance()
            return _number(token)
        if kind == "ident":
            self.advance()
            return _BOOLS.get(token, token)
        raise self.fail(f"expected a value, found {token!r}" if kind != "end" else "unexpected end of text")


def parse_prototxt(text: str) -> Message:
    """The top-level message of ``text``; PrototxtError (with line and column) if it is malformed."""
    return _Parser(text).message(None, 0, 1)
