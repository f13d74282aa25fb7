"""A space's ``constraints:``: budgets on parameters, MACs and activation memory.

``max_params`` / ``min_params`` count every parameter of the built model (aux heads
included: what ``sum(p.numel() for p in model.parameters())`` gives); ``max_macs`` /
``min_macs`` count one inference forward pass (aux heads do not run); ``max_activation_bytes``
bounds the float32 activations alive at once in an eval forward pass of one sample
(:func:`archbuilder.ir.memory.activation_bytes`). Numbers may carry a suffix: ``5M``,
``1.5G``, ``500K``, ``2T`` (powers of 1000) or ``64Mi`` (powers of 1024; ``B`` may follow
for bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archbuilder.core.errors import Problem, did_you_mean
from archbuilder.space.budget import MAX_AMOUNT
from archbuilder.spec.source import Location, Source

__all__ = ["KEYS", "Constraints", "parse_amount", "parse_constraints", "shown"]

KEYS = ("max_params", "min_params", "max_macs", "min_macs", "max_activation_bytes")
_MEASURE = {"params": "parameters", "macs": "MACs", "activation_bytes": "activation bytes"}
_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_SUFFIX.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e([+-]?[0-9]+))?\s*(Ki|Mi|Gi|Ti|[KMGT])?(B)?\s*$")
_EXPECTED = "a number such as 5000000, 5M or 1.5G (K M G T: powers of 1000; Ki Mi Gi Ti: of 1024)"


def parse_amount(value: Any, *, bytes_: bool = False) -> int:
    """``5M`` → 5,000,000; ``1.5G`` → 1,500,000,000; ``64Mi`` → 67,108,864. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_EXPECTED}, got {_shown(value)}")
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and (match := _AMOUNT.match(value)):
        digits, exponent, suffix, unit = match.groups()
        if unit and not bytes_:
            raise ValueError(f"'B' (bytes) only goes with max_activation_bytes, got {_shown(value)}")
        # float() reads any exponent at once; 10 ** int(exponent) could run for hours
        number = float(f"{digits}e{exponent or 0}") * _SUFFIX[suffix or ""]
    else:
        raise ValueError(f"expected {_EXPECTED}, got {_shown(value)}")
    if not number >= 0:  # nan compares False
        raise ValueError(f"expected a number ≥ 0, got {_shown(value)}")
    if number > MAX_AMOUNT:
        raise ValueError(f"{_shown(value)} is out of range: a budget is at most 1e18")
    return round(number)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def shown(number: int) -> str:
    """``1,582,671,872 (1.58 G)``: exact, with the size in a word."""
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if abs(number) >= scale:
            return f"{number:,} ({number / scale:.3g} {suffix})"
    return f"{number:,}"


@dataclass(frozen=True)
class Constraints:
    """The budgets of a space; None where a budget is not set."""

    max_params: int | None = None
    min_params: int | None = None
    max_macs: int | None = None
    min_macs: int | None = None
    max_activation_bytes: int | None = None
    locations: dict[str, Location] = field(default_factory=dict, compare=False, repr=False)

    @property
    def any(self) -> bool:
        return any(getattr(self, key) is not None for key in KEYS)

    def violations(self, measured: dict[str, int | None]) -> list[Problem]:
        """One located Problem per budget the measured ``params`` / ``macs`` /
        ``activation_bytes`` break, saying by how much."""
        found = []
        for key in KEYS:
            limit = getattr(self, key)
            bound, measure = key.split("_", 1)
            value = measured.get(measure)
            if limit is None or value is None:
                continue
            excess = value - limit if bound == "max" else limit - value
            if excess > 0:
                side = "over" if bound == "max" else "under"
                message = (
                    f"{shown(value)} {_MEASURE[measure]}: {side} {key} {shown(limit)} by {shown(excess)}"
                )
                file, line, column = self.locations.get(key, (None, None, None))
                found.append(Problem(("constraints", key), message, file, line, column))
        return found

    def to_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in KEYS if getattr(self, key) is not None}


def parse_constraints(value: Any, source: Source) -> tuple[Constraints, list[Problem]]:
    """The ``constraints:`` mapping of a space, and its problems (each located)."""
    if value is None:
        return Constraints(), []
    if not isinstance(value, dict):
        return Constraints(), [source.problem(("constraints",), f"expected a mapping of {', '.join(KEYS)}")]
    problems, found = [], {}
    for key, amount in value.items():
        path = ("constraints", key)
        if key not in KEYS:
            hint = did_you_mean(str(key), KEYS)
            problems.append(
                source.problem(path, f"unknown constraint '{key}'{hint}; constraints: {', '.join(KEYS)}")
            )
            continue
        try:
            found[key] = parse_amount(amount, bytes_=key == "max_activation_bytes")
        except ValueError as exc:
            problems.append(source.problem(path, str(exc)))
    for measure in ("params", "macs"):
        low, high = found.get(f"min_{measure}"), found.get(f"max_{measure}")
        if low is not None and high is not None and low > high:
            message = f"min_{measure} {shown(low)} is above max_{measure} {shown(high)}: no model fits"
            problems.append(source.problem(("constraints", f"min_{measure}"), message))
    locations = {key: _location(source, ("constraints", key)) for key in found}
    return Constraints(**found, locations=locations), problems


def _location(source: Source, path: tuple[str, ...]) -> Location:
    problem = source.problem(path, "")
    return problem.file, problem.line, problem.column
