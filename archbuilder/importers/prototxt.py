"""A parser for protobuf's text format as Caffe writes it (``.prototxt``), without protoc.

The result is plain data: a message is a dict from field name to a list of values (every
field may repeat in the text format), a value is a str, int, float, bool, an enum name (a
bare identifier, kept as str) or a nested message dict. No schema is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Message", "PrototxtError", "parse_prototxt"]

Message = dict[str, list]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fF]?|[-+]?inf(?:inity)?|nan)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}:<>\[\],;])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
MAX_DEPTH = 64


class PrototxtError(ValueError):
    """The text is not valid protobuf text format; the message says where."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line, self.column = line, column


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int
    column: int


def _tokens(text: str) -> list[_Token]:
    tokens, position, line, start = [], 0, 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise PrototxtError(f"unexpected character {text[position]!r}", line, position - start + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), line, position - start + 1))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            start = position + match.group().rindex("\n") + 1
        position = match.end()
    return tokens


def _unquote(text: str) -> str:
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(_ESCAPES.get(body[index + 1], body[index + 1]))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def fail(self, message: str) -> PrototxtError:
        token = self.peek() or (self.tokens[-1] if self.tokens else _Token("", "", 1, 1))
        return PrototxtError(message, token.line, token.column)

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise self.fail(f"expected {text!r}" if text else "unexpected end of text")
        self.index += 1
        return token

    def message(self, close: str | None, depth: int) -> Message:
        if depth > MAX_DEPTH:
            raise self.fail(f"messages nested deeper than {MAX_DEPTH}")
        fields: Message = {}
        while True:
            token = self.peek()
            if token is None:
                if close is not None:
                    raise self.fail(f"missing {close!r}")
                return fields
            if close is not None and token.text == close:
                self.index += 1
                return fields
            if token.kind != "ident":
                raise self.fail(f"expected a field name, found {token.text!r}")
            self.index += 1
            fields.setdefault(token.text, []).extend(self.values(depth))
            if self.peek() is not None and self.peek().text in (",", ";"):
                self.index += 1

    def values(self, depth: int) -> list:
        token = self.peek()
        if token is not None and token.text == ":":
            self.index += 1
            token = self.peek()
        if token is not None and token.text in ("{", "<"):
            self.index += 1
            return [self.message("}" if token.text == "{" else ">", depth + 1)]
        if token is not None and token.text == "[":  # a list of values
            self.index += 1
            items = []
            while self.peek() is not None and self.peek().text != "]":
                items.extend(self.values(depth))
                if self.peek() is not None and self.peek().text == ",":
                    self.index += 1
            self.take("]")
            return items
        return [self.scalar()]

    def scalar(self) -> str | int | float | bool:
        token = self.take()
        if token.kind == "string":
            text = _unquote(token.text)
            while self.peek() is not None and self.peek().kind == "string":  # adjacent strings join
                text += _unquote(self.take().text)
            return text
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "ident":
            return {"true": True, "false": False, "True": True, "False": False}.get(token.text, token.text)
        self.index -= 1
        raise self.fail(f"expected a value, found {token.text!r}")


def _number(text: str) -> int | float:
    lowered = text.lower().rstrip("f") if not text.lower().endswith("inf") else text.lower()
    try:
        return int(lowered, 10)
    except ValueError:
        return float(lowered)


def parse_prototxt(text: str) -> Message:
    """The top-level message of ``text``; PrototxtError (with line and column) if it is malformed."""
    return _Parser(text).message(None, 0)
