"""The decisions of a search space: a choice between options, or an integer or float range.

A decision is written in place of any value of a spec. A choice's options may hold further
decisions (a choice between two blocks, each with its own widths); those exist only when
their option is taken, and ``parent`` says which.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

from archbuilder.core.errors import KeyPath
from archbuilder.spec.source import Location

__all__ = ["Decision", "is_scalar"]

Kind = Literal["choice", "int", "float"]


def is_scalar(value: Any) -> bool:
    """Whether Optuna's ``suggest_categorical`` can take ``value`` as one of its choices."""
    return value is None or isinstance(value, (bool, int, float, str))


@dataclass(frozen=True)
class Decision:
    """One decision of a space, named by where it is written (or by its ``id``)."""

    name: str
    kind: Kind
    path: KeyPath
    """Where it is written in the space's data (after ``extends`` is merged)."""
    location: Location
    options: tuple[Any, ...] = ()
    """A choice's options as written (nested decisions still in them)."""
    labels: tuple[str, ...] = ()
    """A choice's options as Optuna and sample headers name them, when they are not scalars."""
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    log: bool = False
    parent: tuple[str, int] | None = None
    """(name, option index) of the choice whose option holds this decision; None at top level."""

    @functools.cached_property
    def scalar(self) -> bool:
        """Whether a pick of this decision is its value (otherwise a choice's label)."""
        return self.kind != "choice" or all(is_scalar(option) for option in self.options)

    @functools.cached_property
    def _indices(self) -> dict[tuple[type, Any], int]:
        """A choice's public values (type and value) → option index, the first of equals."""
        indices: dict[tuple[type, Any], int] = {}
        for index, key in enumerate(self.options if self.scalar else self.labels):
            indices.setdefault((type(key), key), index)
        return indices

    @property
    def count(self) -> int | float:
        """Values this decision alone can take (``math.inf`` for a continuous range)."""
        if self.kind == "choice":
            return len(self.options)
        if self.step is None:
            return math.inf if self.kind == "float" else self.high - self.low + 1
        return round((self.high - self.low) / self.step) + 1

    def value(self, index: int) -> int | float:
        """The ``index``-th value of a discrete range."""
        value = self.low + index * (self.step if self.step is not None else 1)
        return value if self.kind == "int" else round(value, 12)

    def public(self, pick: Any) -> Any:
        """The pick as users see it: a choice's option (or label), a range's value."""
        if self.kind != "choice":
            return pick
        return self.options[pick] if self.scalar else self.labels[pick]

    def index_of(self, public: Any) -> int | None:
        """The option index of a choice's public value, or None when it is not an option."""
        try:
            index = self._indices.get((type(public), public))
        except TypeError:  # unhashable (a list): no option's public value
            return None
        if index is not None:
            return index
        keys = self.options if self.scalar else self.labels
        if isinstance(public, int) and not isinstance(public, bool):  # 1 for an option 1.0
            return next((i for i, key in enumerate(keys) if type(key) is float and key == public), None)
        return None

    def contains(self, value: Any) -> bool:
        """Whether a range takes ``value``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        steps = (value - self.low) / self.step
        return abs(steps - round(steps)) < 1e-9

    def describe(self) -> str:
        """What it can take, in a few words: ``16 | 32 | 48``, ``int 1..4 step 1``."""
        if self.kind == "choice":
            shown = [_short(option) if self.scalar else label for option, label in self._pairs()]
            return " | ".join(shown)
        text = f"{self.kind} {self.low}..{self.high}"
        if self.step is not None and not (self.kind == "int" and self.step == 1):
            text += f" step {self.step}"
        return text + (" (log)" if self.log else "")

    def _pairs(self):
        labels = self.labels or tuple("" for _ in self.options)
        return zip(self.options, labels)


def _short(value: Any) -> str:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= 24 else text[:21] + "..."
