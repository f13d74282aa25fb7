"""Search spaces against work that grows with the input: every count is bounded or refused.

A choice of 10,000 options (the documented limit) is judged in seconds; a number out of
range in a range or a constraint is a located problem, never an overflow or an hour of
arithmetic; draws, samples, tries and probes have ceilings the CLI names as usage errors.
Anything that could hang on a regression runs in a subprocess or a thread with a deadline.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import archbuilder
from archbuilder.cli import main
from archbuilder.core.errors import SpecError
from archbuilder.space.budget import MAX_DRAWS, MAX_SAMPLES, PROBE_BUDGET

from .conftest import ROOT

SPACE = """\
name: hostile
input: {{channels: 1, height: 8, width: 8}}
num_classes: 10
constraints: {{max_params: {budget}}}
blocks:
  - {{name: c1, kind: conv, out: {out}, kernel: {kernel}}}
  - {{name: pool, kind: global_avgpool}}
  - {{kind: flatten}}
  - {{name: fc, kind: linear, out: num_classes}}
"""
TEN_THOUSAND = "{choice: [" + ", ".join(str(i) for i in range(1, 10_001)) + "]}"


def space_text(out="8", kernel="3", budget="1M") -> str:
    return SPACE.format(out=out, kernel=kernel, budget=budget)


def archbuild(*args: str, seconds: float) -> tuple[subprocess.CompletedProcess, float]:
    """``archbuild ARGS`` in a process of its own, killed after ``seconds``; and how long it ran."""
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "archbuilder", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"archbuild {' '.join(args)[:80]} ran past {seconds} s")
    return result, time.monotonic() - start


def finishes(function, seconds: float = 20):
    """``function()``'s result or exception, failing the test if it runs past ``seconds``."""
    box: list = []

    def run():
        try:
            box.append(function())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return box[0]


def problems_of(text: str) -> list:
    error = finishes(lambda: archbuilder.load_space(text))
    assert isinstance(error, SpecError), error
    return list(error.problems)


# -- choices ----------------------------------------------------------------------------------
def test_a_choice_of_the_documented_10000_options_is_judged_in_seconds(tmp_path):
    # All but 8 kernels collapse the 8×8 input: every option is probed, most fail.
    space = tmp_path / "kernels.yaml"
    space.write_text(space_text(kernel=TEN_THOUSAND))
    result, seconds = archbuild("space", str(space), "--draws", "20", seconds=120)
    assert result.returncode == 0, result.stderr
    assert seconds < 30  # more than 60 s before the probes were budgeted
    assert "raw size: 10,000 combinations" in result.stdout
    assert f"blocks.c1.kernel = {PROBE_BUDGET}: no valid candidate in 1 tries" in result.stdout
    assert f"{10_000 - PROBE_BUDGET:,} options not probed" in result.stdout


def test_a_choice_of_10000_options_costs_linear_time_in_the_api():
    space = finishes(lambda: archbuilder.load_space(space_text(out=TEN_THOUSAND)))
    (decision,) = space.decisions
    start = time.monotonic()
    assert decision.describe().startswith("1 | 2 | 3")
    assert space.candidate({"blocks.c1.out": 9_999}).blocks[0].out == 9_999
    assert space.estimate(20).draws == 20
    assert time.monotonic() - start < 10  # describe() alone was quadratic: 10^8 checks


def test_a_repeated_option_among_10000_is_found_quickly():
    options = "{choice: [" + ", ".join(str(i) for i in range(1, 9_999)) + ", {a: [1]}, {a: [1]}]}"
    (problem,) = problems_of(space_text(out=options))
    assert problem.path == ("blocks", 0, "out", "choice", 9_999)
    assert "listed twice" in problem.message


def test_probes_stop_at_the_budget_and_say_which_options_were_not_tried():
    two = "{choice: [" + ", ".join(str(i) for i in range(1, 8_001)) + "]}"
    space = archbuilder.load_space(space_text(out=two, kernel=two), check=False)
    reports = finishes(lambda: space.check_options(probes=8), seconds=60)
    assert sum(report.tries for report in reports) <= PROBE_BUDGET
    assert len(reports) == 16_000 and any(report.tries == 0 and not report.valid for report in reports)


# -- numbers out of range ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kernel", "key", "words"),
    [
        ("{range: {low: 0.0, high: 1.0e10, step: 1.0e-300}}", (), "at most 1,000,000,000,000"),
        ("{range: {low: 1, high: 10000000000000}}", (), "at most 1,000,000,000,000"),
        ("{range: {low: .nan, high: 1.0}}", ("low",), "out of range"),
        ("{range: {low: 1.0, high: .inf}}", ("high",), "out of range"),
        ("{range: {low: 1, high: 100000000000000000000000000000}}", ("high",), "out of range"),
        ("{range: {low: 1.0e-300, high: 1.0e300, log: true}}", ("high",), "within ±1e18"),
        ("{range: {low: 1, high: 3, step: 0}}", (), "step must be above 0"),
        ("{range: {low: 1, high: 3, step: -1}}", (), "step must be above 0"),
    ],
)
def test_a_range_out_of_range_is_a_located_problem(kernel, key, words):
    (problem,) = problems_of(space_text(kernel=kernel))
    assert problem.path == ("blocks", 0, "kernel", "range", *key) and problem.line == 6
    assert words in problem.message


@pytest.mark.parametrize("budget", ["1e400", "1e30", "100000000000000000000000000000", ".inf", ".nan", "-5"])
def test_a_constraint_out_of_range_is_a_located_problem(budget):
    (problem,) = problems_of(space_text(budget=budget))
    assert problem.path == ("constraints", "max_params") and problem.line == 4


def test_a_constraint_with_an_exponent_of_a_billion_is_refused_at_once(tmp_path):
    # 10 ** 999999999 is hours of big-integer arithmetic, holding the GIL: a process of its own.
    space = tmp_path / "budget.yaml"
    space.write_text(space_text(budget="1e999999999K"))
    result, _ = archbuild("space", str(space), seconds=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "budget.yaml:4:15: constraints.max_params:" in result.stderr
    assert "out of range" in result.stderr


def test_a_range_of_a_trillion_values_is_listed_lazily():
    space = archbuilder.load_space(space_text(out="{range: {low: 1, high: 1000000000000}}"), check=False)
    first = finishes(lambda: next(space.enumerate(include_invalid=True)))
    assert first.choices == {"blocks.c1.out": 1}


def _dropouts(count: int) -> str:
    """A space of ``count`` dropout layers whose ``p`` takes 5·10^11 values each, all valid."""
    layers = "".join(
        f"  - {{name: d{i}, kind: dropout, p: {{range: {{low: 0.0, high: 0.5, step: 1.0e-12}}}}}}\n"
        for i in range(count)
    )
    return space_text().replace("blocks:\n", "blocks:\n" + layers)


def test_a_space_of_astronomical_size_is_shown_not_overflowed(tmp_path, capsys):
    # 10^316 combinations: past a float (the CLI's estimate of valid candidates overflowed).
    path = tmp_path / "huge.yaml"
    path.write_text(_dropouts(27))
    assert main(["space", str(path), "--draws", "2", "--probes", "1"]) == 0
    out = capsys.readouterr().out
    assert "raw size: ~10^316 combinations" in out and "about ~10^316 valid candidates" in out
    # 10^4680: past Python's limit of 4,300 digits for writing an integer.
    assert "~10^4680 combinations" in repr(archbuilder.load_space(_dropouts(400), check=False))


# -- draws, samples, tries, probes ------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "flag", "limit"),
    [
        ("space", "--draws", MAX_DRAWS),
        ("space", "--probes", 100),
        ("sample", "-n", MAX_SAMPLES),
        ("sample", "--max-tries", 1_000_000),
    ],
)
def test_counts_past_their_ceiling_are_usage_errors_naming_it(tmp_path, command, flag, limit):
    space = tmp_path / "tiny.yaml"
    space.write_text(space_text(out="{choice: [4, 8]}"))
    output = ["-o", str(tmp_path / "out")] if command == "sample" else []
    result, _ = archbuild(command, str(space), flag, "1000000000", *output, seconds=60)
    assert result.returncode == 2, result.stderr
    assert f"at most {limit:,}" in result.stderr and not (tmp_path / "out").exists()


def test_the_api_refuses_the_same_counts_before_any_work():
    space = archbuilder.load_space(space_text(out="{choice: [4, 8]}"))
    for call, words in [
        (lambda: space.sample(10**9), "n must be from 0 to 10,000"),
        (lambda: space.sample(1, max_tries=10**9), "max_tries must be from 0 to 1,000,000"),
        (lambda: space.estimate(10**9), "draws must be from 0 to 100,000"),
        (lambda: space.check_options(probes=10**9), "probes must be from 0 to 100"),
    ]:
        error = finishes(call, seconds=10)
        assert isinstance(error, ValueError) and words in str(error), error


def test_the_most_draws_on_a_tiny_space_take_seconds(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(space_text(out="{choice: [4, 8]}"))
    result, seconds = archbuild("space", str(space), "--draws", str(MAX_DRAWS), seconds=120)
    assert result.returncode == 0 and seconds < 60
    assert f"{MAX_DRAWS} of {MAX_DRAWS} random candidates valid" in result.stdout


def test_shipped_spaces_stay_within_every_budget():
    for path in sorted(Path(ROOT, "specs", "spaces").glob("*.yaml")):
        space = archbuilder.load_space(path)
        assert len(space.sample(3, seed=0)) == 3, path


def test_a_decided_name_inside_a_choices_option_is_a_decision_not_a_traceback():
    # Found by tests/test_fuzz_space.py: the entry's name was put in a set, unhashable.
    text = space_text().replace(
        "  - {name: c1, kind: conv, out: 8, kernel: 3}\n",
        "  - choice:\n    - {name: {choice: [a, b]}, kind: conv, out: 4, kernel: 3}\n    - null\n",
    )
    space = finishes(lambda: archbuilder.load_space(text))
    assert [decision.name for decision in space.decisions] == ["blocks.0", "blocks.0[conv].name"]
    assert {
        candidate.spec.blocks[0].name
        for candidate in space.sample(3)
        if candidate.choices["blocks.0"] == "conv"
    } <= {"a", "b"}


@pytest.mark.slow
def test_a_chain_of_8000_sames_is_checked_for_cycles_in_linear_time():
    # Each same inside an option names the next choice: the cycle check walked the whole
    # chain from every same (over 30 s); a cycle closed at the end is still found.
    layers = "".join(
        f"  - {{name: l{i}, kind: conv, out: {{choice: [{{same: c{(i + 1) % 8000}}}, 8], id: c{i}}}, kernel: 1}}\n"
        for i in range(8000)
    )
    text = space_text().replace("blocks:\n", "blocks:\n" + layers)
    start = time.monotonic()
    problems = problems_of(text)
    assert time.monotonic() - start < 20
    assert len(problems) == 8000
    assert {problem.message for problem in problems} == {
        f"'c{i}' leads back here through other sames" for i in range(8000)
    }


@pytest.mark.slow
def test_a_decision_over_an_entry_of_30000_keys_loads_in_seconds(tmp_path):
    # The base's keys under a decision are dropped; each location was compared with every
    # dropped key (30,000² comparisons) instead of looking its prefixes up.
    extra = ", ".join(f"x{i}: 1" for i in range(30_000))
    base = space_text().replace("kind: conv, out: 8, kernel: 3}", f"kind: conv, out: 8, kernel: 3, {extra}}}")
    (tmp_path / "base.yaml").write_text(base)
    decision = (
        "{choice: [{name: c1, kind: conv, out: 8, kernel: 3}, {name: c1, kind: conv, out: 4, kernel: 3}]}"
    )
    space_file = tmp_path / "space.yaml"
    space_file.write_text(f"extends: base.yaml\nname: s\nblocks:\n  c1: {decision}\n")
    space = finishes(lambda: archbuilder.load_space(space_file), seconds=15)
    assert not isinstance(space, Exception), space
    assert space.size == 2 and {c.spec.blocks[0].out for c in space.sample(2)} == {4, 8}
