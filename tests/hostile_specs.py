"""Structure-aware hostile specs for the fuzzers (tests/test_fuzz.py, bench/fuzz_specs.py).

Hypothesis strategies that build spec *structure* rather than text: layers nested in
``branches`` blocks with multiplying ``repeat``s, templates that use one another, anchors
and aliases (cycles included), ``scale.depth``, and ``--set`` overrides carrying the same
tricks. A case is YAML text plus a list of overrides; :func:`check` loads it and says how it
ended.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from hypothesis import strategies as st

import archbuilder
from archbuilder.core.errors import SpecError

__all__ = ["Case", "cases", "check"]

REPEATS = [1, 1, 1, 2, 3, 10, 1000, 0, -1, 1001, "x", True, 10**30]
DEPTHS = [0.5, 1, 2, 16, 17, ".nan", 1e-9]
WIDTHS = [1, 3, 4, 64, 0, 2**20, 2**20 + 1, "num_classes", "$w"]
SIZES = [1, 3, 5, 65536, 0, [3, 3], "same", "$k"]
HOSTILE_SET = [
    "blocks.0.repeat=1000",
    "scale.depth=16",
    "scale={depth: 16}",
    "blocks.0.branches.0.layers.0.repeat=1000",
    "blocks=&x [{kind: branches, branches: [{layers: *x}]}]",
    "description=&d [*d]",
    "description=!!python/object/apply:os.system [ls]",
    "blocks.0.out=" + "9" * 5000,
    "num_classes=0x" + "f" * 300,
    "input=" + "[" * 80 + "]" * 80,
    "blocks=[{kind: conv, out: 3, kernel: 1, repeat: 1000}, {kind: conv, out: 3, kernel: 1, repeat: 1000}]",
    "extends=/etc/passwd",
    "blocks.0=null",
    "templates.t0.layer.repeat=1000",
]


@dataclass(frozen=True)
class Case:
    text: str
    overrides: tuple[str, ...] = ()


class _Anchor:
    def __init__(self, name: str, value):
        self.name, self.value = name, value


class _Alias:
    def __init__(self, name: str):
        self.name = name


_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def render(value) -> str:
    """Flow-style YAML for plain data with anchors and aliases."""
    if isinstance(value, _Anchor):
        return f"&{value.name} {render(value.value)}"
    if isinstance(value, _Alias):
        return f"*{value.name}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and not (_PLAIN.match(value) and value not in ("true", "false", "null")):
        return value if value.startswith(".") else json.dumps(value)
    return str(value)


@st.composite
def _leaf(draw, params: bool):
    kinds = ["conv", "conv", "maxpool", "flatten", "template", "inception", "se", "inverted_residual"]
    kind = draw(st.sampled_from(kinds))
    if kind == "conv":
        layer = {"kind": "conv", "out": draw(st.sampled_from(WIDTHS if params else WIDTHS[:-1]))}
        layer["kernel"] = draw(st.sampled_from(SIZES if params else SIZES[:-1]))
        layer["padding"] = draw(st.sampled_from([0, 1, "same", 65536]))
    elif kind == "maxpool":
        layer = {"kind": "maxpool", "kernel": draw(st.sampled_from([2, 3])), "stride": 1, "padding": 1}
    elif kind == "template":
        layer = {"kind": "template", "use": draw(st.sampled_from(["t0", "t1", "t2", "nope"]))}
        if draw(st.booleans()):
            layer["with"] = {draw(st.sampled_from(["w", "k", "x"])): draw(st.sampled_from(WIDTHS[:-1]))}
    elif kind == "inception":
        layer = {"kind": "inception", "ch1x1": 4, "ch3x3": 4, "ch5x5": 4, "pool_proj": 4}
    elif kind == "se":
        layer = {"kind": "se", "reduction": draw(st.sampled_from([1, 4, 1000])), "gate": "hardsigmoid"}
    elif kind == "inverted_residual":
        layer = {"kind": "inverted_residual", "out": draw(st.sampled_from(WIDTHS[:-1])), "expansion": 6}
        layer["stride"] = draw(st.sampled_from([1, 2]))
        if draw(st.booleans()):
            layer["se"] = {"reduction": 4, "of": draw(st.sampled_from(["input", "expanded"]))}
    else:
        layer = {"kind": "flatten"}
    return layer


@st.composite
def _layer(draw, depth: int, anchors: list[str], params: bool = False):
    choice = draw(st.integers(0, 9))
    if choice == 0 and anchors:
        return _Alias(draw(st.sampled_from(anchors)))  # reuse an earlier anchor, or make a cycle
    anchor = None
    if choice == 1:  # named before the children are drawn, so they may refer to it (a cycle)
        anchor = f"a{len(anchors)}"
        anchors.append(anchor)
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        layer = draw(_leaf(params))
    else:
        branches = []
        for _ in range(draw(st.integers(1, 3))):
            layers = [draw(_layer(depth - 1, anchors, params)) for _ in range(draw(st.integers(1, 3)))]
            branches.append({"layers": layers})
        layer = {
            "kind": "branches",
            "merge": draw(st.sampled_from(["concat", "add", "mul"])),
            "branches": branches,
        }
    if draw(st.integers(0, 2)) == 0:
        layer["repeat"] = draw(st.sampled_from(REPEATS))
    return _Anchor(anchor, layer) if anchor else layer


@st.composite
def cases(draw) -> Case:
    """A spec built of hostile structure, with a few hostile overrides."""
    anchors: list[str] = []
    data: dict = {"name": "fuzz", "input": {"channels": 3, "height": 16, "width": 16}}
    if draw(st.booleans()):
        data["num_classes"] = 10
    if draw(st.booleans()):
        data["scale"] = {"depth": draw(st.sampled_from(DEPTHS))}
    if draw(st.booleans()):
        data["templates"] = {
            f"t{i}": {
                "params": ["w", "k"][: draw(st.integers(0, 2))],
                "layer": draw(_layer(2, anchors, True)),
            }
            for i in range(draw(st.integers(1, 3)))
        }
    data["blocks"] = [draw(_layer(3, anchors)) for _ in range(draw(st.integers(1, 4)))]
    if draw(st.integers(0, 3)) == 0:
        data["head"] = _Alias(draw(st.sampled_from(anchors))) if anchors else [{"kind": "flatten"}]
    overrides = tuple(draw(st.lists(st.sampled_from(HOSTILE_SET), max_size=2)))
    return Case(render(data) + "\n", overrides)


def check(case: Case, time_limit: float = 10.0) -> str:
    """``valid``, ``error``, or what went wrong: ``traceback: ...``, ``slow: ...``, ``unlocated``."""
    start = time.perf_counter()
    try:
        archbuilder.summarize(archbuilder.load_spec(case.text, overrides=list(case.overrides)))
        outcome = "valid"
    except SpecError as exc:
        texts = [str(problem) for problem in exc.problems]  # the formatter must not fail either
        outcome = "error" if all(texts) and all("\n" not in t for t in texts) else "unlocated"
    except Exception as exc:  # anything else is a finding
        return f"traceback: {type(exc).__name__}: {str(exc)[:200]}"
    seconds = time.perf_counter() - start
    return f"slow: {seconds:.1f} s" if seconds > time_limit else outcome
