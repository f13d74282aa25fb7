"""Hostile YAML, second pass: every value, however odd, gets a located error, not a traceback.

The truths here are the YAML 1.2 core schema (yaml.org/spec/1.2.2, "10.3 Core Schema"), the
YAML merge-key rule (yaml.org/type/merge: keys of the mapping itself override merged ones)
and docs/spec.md's own example.
"""

from __future__ import annotations

import pytest

import archbuilder
from archbuilder.core.errors import SpecError
from archbuilder.spec.source import MAX_DEPTH, parse_yaml

from .test_docs import DOCS, fences

HEAD = "name: x\ninput: {channels: 3, height: 8, width: 8}\n"
CONV = "{kind: conv, out: 4, kernel: 3, padding: 1}"


def problems(text: str, **kwargs) -> list:
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(text, **kwargs)
    for problem in caught.value.problems:
        assert str(problem)  # the formatter itself never fails
    return list(caught.value.problems)


# -- YAML 1.1 surprises: the core schema ------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("010", 10),  # 1.1: 8
        ("08", 8),  # 1.1: the string '08'
        ("0o17", 15),
        ("0x1A", 26),
        ("1e-3", 0.001),  # 1.1: a string
        ("1:30", "1:30"),  # 1.1: 90
        ("on", "on"),  # 1.1: True
        ("no", "no"),  # 1.1: False
        ("2024-02-30", "2024-02-30"),  # 1.1: ValueError, day is out of range
        ("=", "="),  # 1.1: unsupported tag 'tag:yaml.org,2002:value'
        ("1_000", "1_000"),  # 1.1: 1000
        ("TRUE", True),
        ("~", None),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(written, value):
    data, _ = parse_yaml(f"key: {written}\n")
    assert data["key"] == value and type(data["key"]) is type(value)


def test_an_octal_looking_width_is_decimal_and_a_date_is_a_name():
    spec = archbuilder.load_spec("name: 2024-02-30\ninput: {channels: 3, height: 8, width: 8}\n"
                                 "blocks: [{kind: conv, out: 010, kernel: 3}]\n")  # fmt: skip
    assert spec.name == "2024-02-30" and spec.blocks[0].out == 10


def test_sexagesimal_is_a_string_and_validation_says_so():
    (problem,) = problems(HEAD + "blocks: [{kind: conv, out: 1:30, kernel: 3}]\n")
    assert (problem.path, problem.line) == (("blocks", 0, "out"), 3) and "'1:30'" in problem.message


def test_keys_are_names_as_written():
    data, _ = parse_yaml("true: 1\n010: 2\nnull: 3\n")
    assert list(data) == ["true", "010", "null"]


def test_key_true_gets_no_far_fetched_suggestion():
    (problem,) = problems(HEAD + "blocks: [{kind: conv, out: 4, kernel: 3, true: 1}]\n")
    assert "unknown key 'true'" in problem.message and "did you mean" not in problem.message


# -- merge keys -------------------------------------------------------------------------------
def test_the_documented_merge_key_example_loads():
    (block,) = [b for b in fences(DOCS / "spec.md") if "<<: *conv3x3, name: c2, out: 64" in b.text]
    spec = archbuilder.load_spec(block.text)
    c1, c2 = spec.blocks
    assert (c2.name, c2.out, c2.kernel, c2.padding) == ("c2", 64, c1.kernel, c1.padding)


def test_explicit_keys_override_merged_ones_and_earlier_merges_win():
    data, _ = parse_yaml("a: &a {k: 1, s: 1}\nb: &b {k: 2, z: 2}\nc: {<<: [*a, *b], s: 3}\n")
    assert data["c"] == {"k": 1, "z": 2, "s": 3}


def test_an_explicit_key_written_twice_is_still_a_duplicate():
    (problem,) = problems("a: &a {k: 1}\nb: {<<: *a, k: 2, k: 3}\n")
    assert "duplicate key 'k'" in problem.message and problem.line == 2


@pytest.mark.parametrize("value", ["5", "[1, 2]", "x"])
def test_a_merge_key_with_a_scalar_is_a_located_error(value):
    found = problems(f"name: x\nblocks: [{{<<: {value}}}]\n")
    assert all(p.line == 2 and "merge key '<<' takes a mapping" in p.message for p in found)


# -- aliases: cycles and nesting after expansion ----------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "description: &a [*a]\n",
        "blocks: &a [{kind: branches, branches: [{layers: *a}]}]\n",
        "a: &m {x: *m}\n",
        "a: &m {<<: *m}\n",
    ],
)
def test_recursive_aliases_are_a_located_error(text):
    (problem,) = problems(text)
    assert problem.line == 1 and "cycle" in problem.message


def test_anchor_chains_nest_too_deep_once_expanded():
    # Each anchor nests 4 levels and stays far under the limit as written.
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [[[[*a{i - 1}]]]]" for i in range(1, 30)]
    (problem,) = problems("\n".join(lines) + "\n")
    assert f"deeper than {MAX_DEPTH} levels once its aliases are expanded" in problem.message


def test_many_values_without_aliases_are_not_blamed_on_aliases():
    text = HEAD + "blocks:\n" + "".join(f"  - {{kind: flatten, name: f{i}}}\n" for i in range(70_000))
    (problem,) = problems(text)
    assert "200,000 values" in problem.message and "alias" not in problem.message


# -- huge numbers -----------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["9" * 10_000, "0x" + "f" * 10_000, "-" + "1" * 5000, "1." + "5" * 10_000])
def test_huge_numbers_are_a_located_error(number):
    (problem,) = problems(HEAD + f"blocks: [{{kind: conv, out: {number}, kernel: 3}}]\n")
    assert problem.line == 3 and "far too" in problem.message


def test_a_huge_integer_given_as_python_data_never_breaks_the_formatter():
    (problem,) = problems(HEAD + f"blocks: [{CONV}]\n", overrides={"blocks.0.out": 10**5000})
    assert "too large" in problem.message


# -- messages a user can act on ---------------------------------------------------------------
def test_a_key_with_a_cyrillic_look_alike_is_named():
    (problem,) = problems(HEAD + "blocks: [{k\u0456nd: conv, out: 4, kernel: 3}]\n")
    assert "U+0456" in problem.message and "CYRILLIC" in problem.message


def test_a_parameter_written_as_a_key_is_explained():
    text = (
        HEAD
        + "templates: {t: {params: [k], layer: {kind: conv, out: 4, $k: 3}}}\nblocks: [{kind: flatten}]\n"
    )
    found = problems(text)
    assert any("written as a key" in p.message and "never used" not in p.message for p in found)


def test_a_megabyte_key_is_explained():
    (problem,) = problems(HEAD + "k" * (1 << 20) + ": 1\n")
    assert "at most 1,024 characters" in problem.message


# -- control characters never forge a line ----------------------------------------------------
def test_ansi_escapes_and_newlines_in_keys_are_escaped():
    forged = "a\\x1b[2K\\rfile:1:1: FORGED PROBLEM\\nb"
    found = problems(HEAD + f'blocks: [{{kind: conv, out: 4, kernel: 3, "{forged}": 1}}]\n')
    text = "\n".join(str(p) for p in found)
    assert "\x1b" not in text and "\r" not in text and "\n" not in text
    assert "\\x1b" in text and "\\n" in text


# -- --set values go through the same parser and limits ---------------------------------------
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("&a [*a]", "cycle"),
        ("!!python/object/apply:os.system [ls]", "unsupported YAML tag"),
        ("[" * 100 + "]" * 100, "nests deeper"),
        ("9" * 5000, "far too large"),
        ("0x" + "f" * 5000, "far too large"),
    ],
)
def test_set_values_are_parsed_with_the_file_parsers_limits(value, words):
    (problem,) = problems(HEAD + f"blocks: [{CONV}]\n", overrides=[f"description={value}"])
    assert problem.file == "--set description" and words in problem.message


def test_a_set_layer_bomb_is_refused_quickly():
    # 10 levels of 10 aliases: 10^10 values if expanded.
    lines = ["[" + ", ".join([CONV] * 10) + "]"]
    value = "&a0 " + lines[0]
    for i in range(1, 10):
        value = f"[{value}, " + ", ".join([f"*a{i - 1}"] * 9) + "]"
        value = f"&a{i} " + value
    (problem,) = problems(HEAD + f"blocks: [{CONV}]\n", overrides=[f"blocks={value}"])
    assert "200,000 values" in problem.message or "nests deeper" in problem.message


def test_set_cannot_override_extends():
    (problem,) = problems(HEAD + f"blocks: [{CONV}]\n", overrides=["extends=/etc/passwd"])
    assert "extends cannot be overridden" in problem.message


# -- what load_spec takes ---------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, 3, ["a"], object()])
def test_load_spec_of_a_non_path_is_a_clear_type_error(value):
    with pytest.raises(TypeError, match=r"file path .* or YAML text"):
        archbuilder.load_spec(value)


def test_load_spec_of_bytes_and_of_empty_text():
    assert archbuilder.load_spec((HEAD + f"blocks: [{CONV}]\n").encode()).name == "x"
    (problem,) = problems("")
    assert "empty" in problem.message


@pytest.mark.parametrize("overrides", [[1], [None], ["noequals"], {1: 2}])
def test_malformed_overrides_are_spec_errors(overrides):
    (problem,) = problems(HEAD + f"blocks: [{CONV}]\n", overrides=overrides)
    assert problem.file == "--set"


def test_inline_text_has_the_file_size_cap():
    (problem,) = problems(HEAD + "description: " + "x" * (5 << 20) + "\nblocks: []\n")
    assert "larger than 4 MiB" in problem.message


@pytest.mark.parametrize("wrap", [False, True], ids=["chain", "nested-branches"])
def test_templates_nesting_too_deep_is_a_located_error(wrap):
    # t0 uses t1 uses t2 … 1,500 (or 300, each inside a branches block) deep.
    count = 300 if wrap else 1500

    def layer(i: int) -> str:
        use = f"{{kind: template, use: t{i + 1}}}"
        return f"{{kind: branches, branches: [{{layers: [{use}]}}]}}" if wrap else use

    lines = [f"  t{i}: {{layer: {layer(i)}}}" for i in range(count)] + [
        f"  t{count}: {{layer: {{kind: flatten}}}}"
    ]
    text = HEAD + "templates:\n" + "\n".join(lines) + "\nblocks: [{kind: template, use: t0}]\n"
    found = problems(text)
    assert any("templates nest too deep" in p.message for p in found), found
