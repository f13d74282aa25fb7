"""Structure-aware hostile search spaces for the fuzzers (tests/test_fuzz_space.py, bench/fuzz_space.py).

A case starts from a real space (the shipped one, the small space of the tests, the docs'
tiny one) and puts decisions where values were: choices of 0, 1, a few or 10,000 options,
nested choices, ranges with huge, negative, NaN, infinite or 1e-300 numbers, ``same``\\ s
naming anything, constraints such as ``1e999999999K``, misspelt markers and unknown keys.
:func:`check` loads it and, when it loads, samples, estimates, probes, lists and writes it;
each case must end in a space or a SpecError within the time limit.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import yaml
from hypothesis import strategies as st

import archbuilder
from archbuilder.core.errors import SpecError
from archbuilder.space.output import read_header, sample_text

from .conftest import ROOT
from .test_space import SMALL

__all__ = ["Case", "cases", "check"]

TINY = """
name: tiny
input: {channels: 1, height: 8, width: 8}
constraints: {max_params: 300}
blocks:
  - {name: conv1, kind: conv, out: {choice: [16, 32]}, kernel: {choice: [3, 9]}}
  - {name: pool, kind: global_avgpool}
  - {kind: flatten}
  - {name: fc, kind: linear, out: 10}
"""
BASES = [
    yaml.safe_load((ROOT / "specs" / "spaces" / "inception-digits.yaml").read_text()),
    yaml.safe_load(SMALL),
    yaml.safe_load(TINY),
]

NUMBERS = [
    0,
    1,
    3,
    -1,
    -(10**30),
    10**30,
    10**400,
    2**63,
    1e-300,
    1e300,
    -1e300,
    0.5,
    math.nan,
    math.inf,
    -math.inf,
    True,
    "3",
]
AMOUNTS = [*NUMBERS, "1e999999999K", "1e400", "5M", "64MiB", "1.5G", "-5", "1e18", "abc", "9" * 5000, None]
PLAUSIBLE = st.sampled_from([1, 2, 3, 4, 8, 16, 32, None, "same", "relu"])  # most cases should load
SCALARS = st.one_of(
    PLAUSIBLE,
    PLAUSIBLE,
    PLAUSIBLE,
    st.sampled_from([*NUMBERS, "conv", "x" * 300, "a\nb: c", "\u2028", ""]),
    st.integers(-(10**6), 10**6),
    st.text(max_size=6),
)


# Keys whose value a decision rarely replaces usefully (a decision in place of a choice's list).
_KEEP = {"choice", "range", "same", "id", "low", "high", "step", "log", "extends"}


@dataclass(frozen=True)
class Case:
    text: str
    note: str  # the mutations, for a failure's report


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def _choice(draw, depth: int = 0):
    count = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 3, 3, 5, 10_000, 10_001]))
    big = count >= 10_000  # the documented limit, and one past it
    options = list(range(1, count + 1)) if big else [draw(_option(depth)) for _ in range(count)]
    decision = {"choice": options}
    if draw(st.booleans()):
        decision["id"] = draw(st.sampled_from(["w", "k", "w.2", "1bad", "", 7, "x" * 100]))
    return decision


@st.composite
def _option(draw, depth: int):
    if depth < 3 and draw(st.integers(0, 5)) == 0:
        return draw(_decision(depth + 1))
    if draw(st.integers(0, 4)) == 0:
        return {
            "name": draw(st.sampled_from(["b", "c", "x"])),
            "kind": "conv",
            "out": draw(SCALARS),
            "kernel": 3,
        }
    return draw(SCALARS)


@st.composite
def _range(draw):
    if draw(st.booleans()):  # a plausible range, sometimes with a step or log
        low = draw(st.sampled_from([1, 2, 0.5]))
        spec = {"low": low, "high": low + draw(st.sampled_from([0, 1, 3, 7]))}
        spec.update(draw(st.sampled_from([{}, {"step": 1}, {"step": 0.5}, {"log": True}])))
        return {"range": spec}
    keys = draw(st.lists(st.sampled_from(["low", "high", "step", "log", "lo"]), max_size=4, unique=True))
    spec = {
        key: draw(st.sampled_from([True, False])) if key == "log" else draw(st.sampled_from(NUMBERS))
        for key in keys
    }
    return {"range": spec}


@st.composite
def _decision(draw, depth: int = 0):
    kind = draw(st.sampled_from(["choice", "choice", "range", "same", "misspelt", "nested"]))
    if kind == "choice":
        return draw(_choice(depth))
    if kind == "range":
        return draw(_range())
    if kind == "same":
        return {"same": draw(st.sampled_from(["w", "k", "blocks.c1.kernel", "nowhere", 3, None]))}
    if kind == "misspelt":
        return {
            draw(st.sampled_from(["choise", "rang", "sam"])): draw(st.sampled_from([[1, 2], {"low": 1}, "w"]))
        }
    inner: dict = {"choice": [1]}
    for _ in range(draw(st.sampled_from([2, 3, 8, 40]))):  # deep nesting: a choice in a choice in ...
        inner = {"choice": [inner, 2]}
    return inner


@st.composite
def cases(draw) -> Case:
    """A real space with 1 to 3 values replaced by hostile decisions or constraints."""
    base_index = draw(st.integers(0, len(BASES) - 1))
    data = copy.deepcopy(BASES[base_index])
    notes = [f"base {base_index}"]
    if draw(st.booleans()):  # half the cases only decide values a space would: most load
        return _benign(draw, data, notes)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["decision", "decision", "decision", "constraint", "unknown key"]))
        if action == "constraint":
            key = draw(
                st.sampled_from(["max_params", "min_params", "max_macs", "max_activation_bytes", "max_parms"])
            )
            data.setdefault("constraints", {})
            if isinstance(data["constraints"], dict):
                data["constraints"][key] = draw(st.sampled_from(AMOUNTS))
            notes.append(f"constraint {key}")
            continue
        path = draw(st.sampled_from([path for path in _paths(data) if path and path[-1] not in _KEEP]))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            if action == "unknown key" and isinstance(parent, dict):
                parent[draw(st.sampled_from(["choise", "id", "range", "same", "repeat"]))] = draw(SCALARS)
            else:
                parent[path[-1]] = draw(_decision())
            notes.append(f"{action} at {'.'.join(map(str, path))}")
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this path
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    return Case(text, "; ".join(notes))


def _benign(draw, data: dict, notes: list[str]) -> Case:
    """``data`` with 1 to 3 scalar values made choices holding them, or ranges around them."""
    scalars = [
        path for path in _paths(data) if path and path[-1] not in _KEEP and _is_number(_at(data, path))
    ]
    for path in (
        draw(st.lists(st.sampled_from(scalars), min_size=1, max_size=3, unique=True)) if scalars else []
    ):
        value = _at(data, path[:-1])[path[-1]]
        if not _is_number(value):
            continue  # inside a decision made by an earlier step
        if draw(st.booleans()) and isinstance(value, int):
            decision = {
                "range": {"low": max(1, value // 2), "high": value + draw(st.sampled_from([0, 1, 4]))}
            }
        else:
            others = draw(st.lists(PLAUSIBLE, min_size=1, max_size=3, unique=True))
            decision = {"choice": [value, *(x for x in others if x != value)]}
        _at(data, path[:-1])[path[-1]] = decision
        notes.append(f"benign decision at {'.'.join(map(str, path))}")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    return Case(text, "; ".join(notes))


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(case: Case, time_limit: float = 10.0) -> str:
    """``valid``, ``error``, or what went wrong: ``traceback: ...``, ``slow: ...``, ``unlocated``."""
    start = time.perf_counter()
    try:
        space = archbuilder.load_space(case.text)
        outcome = "valid"
        _exercise(space)
    except SpecError as exc:
        texts = [str(problem) for problem in exc.problems]  # the formatter must not fail either
        outcome = "error" if texts and all(texts) and all("\n" not in t for t in texts) else "unlocated"
    except Exception as exc:  # anything else is a finding
        return f"traceback: {type(exc).__name__}: {str(exc)[:200]}"
    seconds = time.perf_counter() - start
    return f"slow: {seconds:.1f} s" if seconds > time_limit else outcome


def _exercise(space: archbuilder.SearchSpace) -> None:
    """What `archbuild space` and `sample` do with a loaded space, a few draws' worth."""
    repr(space)
    for decision in space.decisions:
        decision.describe()
    sample = space.sample(3, seed=0, max_tries=60)
    space.estimate(20, seed=0)
    space.check_options(probes=1)
    for index, candidate in enumerate(sample, start=1):
        text = sample_text(candidate, space="fuzz.yaml", sha256=space.sha256, seed=0, index=index)
        assert read_header(text)["decisions"] == candidate.choices
        assert archbuilder.load_spec(text) == candidate.spec
    try:
        listed = space.enumerate(include_invalid=True)
    except SpecError:
        return  # a continuous range: no list, said at once
    for _ in zip(range(3), listed):
        pass
