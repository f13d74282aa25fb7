"""The YAML 1.2 core schema for plain scalars, on top of PyYAML's safe parser.

PyYAML resolves plain scalars with YAML 1.1 rules, where ``010`` is 8, ``1:30`` is 90,
``on``/``no`` are booleans and ``2024-02-30`` is a (failing) date. Specs are read with the
1.2 core schema instead: ``010`` is 10, and ``1:30``, ``on``, ``no``, dates and ``=`` are
plain strings that validation then checks like any other value. Merge keys (``<<``) are
kept, since docs/spec.md documents them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "MAX_INT_DIGITS",
    "MERGE",
    "NULL",
    "STR",
    "CoreLoader",
    "ScalarError",
    "add_core_resolvers",
    "construct_scalar",
]

MAX_INT_DIGITS = 64  # far beyond any sensible value, far below Python's int-parsing limit

_TAG = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, STR, MERGE = (
    _TAG + name for name in ("null", "bool", "int", "float", "str", "merge")
)

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CoreLoader(_BASE):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader (libyaml's when available) resolving plain scalars by the 1.2 core schema."""

    yaml_implicit_resolvers: dict = {}  # replaces, not extends, the 1.1 resolvers


_RESOLVERS = (
    (NULL, _NULL, ["~", "n", "N", ""]),
    (BOOL, _BOOL, list("tTfF")),
    (INT, _INT, list("-+0123456789")),  # before float: "10" is an int
    (FLOAT, _FLOAT, list("-+.0123456789")),
    (MERGE, re.compile(r"^<<$"), ["<"]),
)


def add_core_resolvers(cls: type) -> None:
    """Teach a PyYAML loader or dumper class the core schema's plain scalars.

    On a dumper (which keeps its 1.1 resolvers too), a string either schema would read as
    something else is written quoted, so the text reads back the same under both.
    """
    for tag, pattern, first in _RESOLVERS:
        cls.add_implicit_resolver(tag, pattern, first)


add_core_resolvers(CoreLoader)


class ScalarError(ValueError):
    """A scalar that is not the plain data its tag says, or a tag specs do not allow."""


def construct_scalar(node: ScalarNode) -> Any:
    """The Python value of a scalar node: None, bool, int, float or str."""
    value, tag = node.value, node.tag
    if tag == STR:
        return value
    if tag == NULL and _NULL.match(value):
        return None
    if tag == BOOL and _BOOL.match(value):
        return value.lower() == "true"
    if tag == INT and _INT.match(value):
        return _integer(value)
    if tag == FLOAT and (_FLOAT.match(value) or _INT.match(value)):
        return _float(value)
    if tag in (NULL, BOOL, INT, FLOAT):
        kind = tag.removeprefix(_TAG)
        raise ScalarError(f"{_short(value)} is not a valid {kind} (it is tagged !!{kind})")
    raise ScalarError(f"unsupported YAML tag {_short(tag)}; specs hold plain data only")


def _integer(value: str) -> int:
    digits = value.lstrip("+-")
    base = 16 if digits.startswith("0x") else 8 if digits.startswith("0o") else 10
    digits = digits[2:] if base != 10 else digits
    if len(digits.lstrip("0")) > MAX_INT_DIGITS:
        raise ScalarError(f"an integer of {len(digits):,} digits is far too large for a spec")
    number = int(digits, base)
    return -number if value.startswith("-") else number


def _float(value: str) -> float:
    lowered = value.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    if _INT.match(value):
        return float(_integer(value))
    mantissa = value.lower().split("e")[0].lstrip("+-")
    if len(mantissa) > 4 * MAX_INT_DIGITS:
        raise ScalarError(f"a number of {len(mantissa):,} digits is far too long for a spec")
    return float(value)


def _short(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
