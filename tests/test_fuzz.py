"""Untrusted input: whatever a spec file holds, loading it gives a spec or a SpecError, fast."""

from __future__ import annotations

import copy
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archbuilder
from archbuilder.core.errors import SpecError

from .conftest import GOOGLENET
from .hostile_specs import cases as hostile_cases
from .hostile_specs import check

BASE = yaml.safe_load(GOOGLENET.read_text())

leaves_base = st.one_of(st.none(), st.integers(-2, 64), st.floats(allow_nan=True), st.text(max_size=8))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(-0.0),
    st.text(max_size=12),
    st.sampled_from(["channel_shuffle", "layer", "shuffle"]),
    st.sampled_from(["num_classes", "same", "conv", "inception", "max", "3a", "4d", "batch", "relu"]),
    st.sampled_from(["branches", "layernorm", "layer_scale", "drop_path", "rest", "1/8", "row"]),
    st.sampled_from(["pre", "post", "separable"]),
    st.sampled_from(
        ["se", "inverted_residual", "hardsigmoid", "expanded", "input", "block_index", "ceil", "mul"]
    ),
    st.dictionaries(
        st.sampled_from(["reduction", "squeeze_channels", "of", "gate", "divisor"]), leaves_base, max_size=3
    ),
    st.lists(st.integers(-3, 300), max_size=3),
    st.dictionaries(st.sampled_from(["kind", "out", "kernel", "name", "x"]), st.integers(-2, 64), max_size=3),
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


ALL_PATHS = [path for path in paths(BASE) if path]


@st.composite
def mutated_specs(draw):
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["set", "delete", "add"]))
            if action == "set":
                parent[path[-1]] = draw(leaves)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, dict):
                keys = ["extra", "kind", "repeat", "scale", "groups", "split", "channels", "drop_path_rate"]
                keys.append("order")  # a conv's order: pre / post
                keys += ["shuffle", "norm"]
                keys += ["se", "expansion", "expanded", "reduction", "drop_path_ramp", "depth_rounding"]
                parent[draw(st.sampled_from(keys))] = draw(leaves)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return data


def _load(text: str):
    try:
        return archbuilder.load_spec(text)
    except SpecError as exc:
        assert exc.problems and all(str(problem) for problem in exc.problems)
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_mutated_specs_load_or_raise_spec_error(data):
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    spec = _load(text)
    if spec is not None:
        summary = archbuilder.summarize(spec)  # a loaded spec always lowers and summarizes
        assert summary.params >= 0 and math.isfinite(summary.macs)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_loads_or_raises_spec_error(text):
    _load(text + "\n")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_spec_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "spec.yaml"
    path.write_bytes(data)
    # No 200 random bytes make a spec (one needs a name, an input and layers), so loading
    # always fails, and must fail with a SpecError located in the file.
    try:
        archbuilder.load_spec(path)
    except SpecError as exc:
        assert exc.problems[0].file == str(path)
    else:
        raise AssertionError(f"{data!r} loaded as a spec")


def test_text_mutants_of_every_shipped_spec_load_or_name_a_line(tmp_path):
    from .conftest import SPECS
    from .mutate import mutants

    path = tmp_path / "mutant.yaml"
    seen = 0
    for index, spec in enumerate(sorted(SPECS.glob("*.yaml"))):
        for _, data in mutants(spec.read_text(), 60, seed=100 + index):
            path.write_bytes(data)
            seen += 1
            try:
                archbuilder.summarize(archbuilder.load_spec(path))
            except SpecError as exc:
                assert all(problem.line is not None for problem in exc.problems), str(exc)
    assert seen >= 300


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_cases())
def test_hostile_structure_loads_or_raises_a_located_spec_error(case):
    """Nested repeats, templates, aliases (cycles too), scale.depth and --set values: a spec
    or a SpecError, within the time limit (bench/fuzz_specs.py --structural runs more)."""
    assert check(case, time_limit=10) in ("valid", "error"), case
