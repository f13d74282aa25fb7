"""Search spaces (archbuilder.space) against truths found without the space code: a brute-force
product of the options, each built with torch and its parameters counted; the published
GoogLeNet counts; hand-counted sizes, amounts and activation bytes."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import pytest

import archbuilder
from archbuilder import SpecError, load_space

from .conftest import GOOGLENET, ROOT

# A small space: a tied width, a kernel that can collapse the 8×8 map, a whole-layer choice
# (conv with a searched width, an Inception block using the tied width, or nothing), and a
# parameter budget from both sides.
SMALL = """
name: small
input: {channels: 1, height: 8, width: 8}
num_classes: 10
constraints: {max_params: 20K, min_params: 300}
blocks:
  - {name: c1, kind: conv, out: {choice: [8, 16, 64], id: w}, kernel: {choice: [1, 3, 9]}}
  - choice:
    - {name: b, kind: conv, out: {range: {low: 8, high: 24, step: 8}}, kernel: 3, padding: 1}
    - {name: b, kind: inception, ch1x1: {same: w}, ch3x3: 8, ch5x5: 8}
    - null
  - {name: pool, kind: global_avgpool}
  - {kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""


def _small_spec_text(width: int, kernel: int, block: str | None) -> str:
    """The plain spec of one combination, written out by hand (no space code involved)."""
    lines = [
        "name: small",
        "input: {channels: 1, height: 8, width: 8}",
        "num_classes: 10",
        "blocks:",
        f"  - {{name: c1, kind: conv, out: {width}, kernel: {kernel}}}",
    ]
    if block is not None:
        lines.append(f"  - {block}")
    lines += [
        "  - {name: pool, kind: global_avgpool}",
        "  - {kind: flatten}",
        "  - {name: fc, kind: linear, out: num_classes}",
    ]
    return "\n".join(lines) + "\n"


def _canonical(spec: archbuilder.ArchSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


@pytest.mark.slow
def test_enumerate_equals_a_brute_force_product_built_and_counted():
    pytest.importorskip("torch")
    expected = set()
    for width, kernel in itertools.product([8, 16, 64], [1, 3, 9]):
        blocks = [f"{{name: b, kind: conv, out: {out}, kernel: 3, padding: 1}}" for out in (8, 16, 24)]
        blocks += [f"{{name: b, kind: inception, ch1x1: {width}, ch3x3: 8, ch5x5: 8}}", None]
        for block in blocks:
            try:
                spec = archbuilder.load_spec(_small_spec_text(width, kernel, block))
            except SpecError:
                continue  # the kernel-9 conv collapses the 8×8 map
            model = archbuilder.build(spec)
            params = sum(p.numel() for p in model.parameters())
            if 300 <= params <= 20_000:
                expected.add(_canonical(spec))
    space = load_space(SMALL)
    found = [_canonical(candidate.spec) for candidate in space.enumerate()]
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert 0 < len(expected) < 45  # both the shapes and the budget rule some out
    assert space.size == 3 * 3 * (3 + 1 + 1)  # counted by hand: nested options add, decisions multiply


def test_invalid_candidates_say_why():
    space = load_space(SMALL)
    verdicts = list(space.enumerate(include_invalid=True))
    assert len(verdicts) == 45
    collapsed = [c for c in verdicts if c.stage == "shapes"]
    assert len(collapsed) == 15 and all(c.choices["blocks.c1.kernel"] == 9 for c in collapsed)
    assert "smaller than the kernel" in collapsed[0].reason and collapsed[0].reason.startswith("<spec>:7:")
    over = [c for c in verdicts if c.stage == "constraints"]
    assert over and all("over max_params 20,000" in c.reason or "under min_params" in c.reason for c in over)
    assert all(c.reason.startswith("<spec>:5:") for c in over)  # the constraints line


def test_sample_with_one_seed_is_reproducible_and_distinct():
    space = load_space(SMALL)
    first, again = space.sample(8, seed=7), space.sample(8, seed=7)
    assert [c.spec.to_yaml() for c in first] == [c.spec.to_yaml() for c in again]
    assert len({_canonical(spec) for spec in first.specs}) == 8
    assert [c.choices for c in space.sample(8, seed=8)] != [c.choices for c in first]
    stats = first.stats
    assert stats.valid == 8 and stats.tried == stats.evaluated + stats.duplicates
    assert sum(stats.rejected.values()) == stats.evaluated - 8
    assert 0 <= stats.rejection_rate < 1


def test_a_sample_larger_than_the_space_returns_every_valid_candidate():
    space = load_space(SMALL)
    everything = {_canonical(c.spec) for c in space.enumerate()}
    sample = space.sample(100, seed=0)
    assert sample.stats.exhausted and {_canonical(s) for s in sample.specs} == everything


def test_tied_choices_are_really_tied():
    space = load_space(
        """
name: tied
input: {channels: 3, height: 16, width: 16}
blocks:
  - {name: 3a, kind: inception, ch1x1: {choice: [8, 16, 24], id: w3}, ch3x3: {same: w3}, ch5x5: 4}
  - {name: 3b, kind: inception, ch1x1: {same: w3}, ch3x3: {choice: [8, 32]}, ch5x5: {same: w3}}
"""
    )
    assert [d.name for d in space.decisions] == ["w3", "blocks.3b.ch3x3"]
    assert space.size == 6
    specs = [c.spec for c in space.enumerate()]
    assert len(specs) == 6
    for spec in specs:
        a, b = spec.blocks
        assert a.ch1x1 == a.ch3x3 == b.ch1x1 == b.ch5x5
    assert {spec.blocks[0].ch1x1 for spec in specs} == {8, 16, 24}


def _googlenet_space(tmp_path, constraints: str = "") -> str:
    path = tmp_path / "googlenet-space.yaml"
    path.write_text(
        f"extends: {GOOGLENET}\n{constraints}"
        "blocks:\n"
        "  3a: {ch1x1: {choice: [48, 64, 96], id: w3}, ch3x3: {range: {low: 96, high: 160, step: 32}}}\n"
        "  3b: {ch1x1: {same: w3}}\n"
        "  4e:\n"
        "    choice:\n"
        "      - {name: 4e, kind: inception, ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, pool_proj: 128}\n"
        "      - {name: 4e, kind: conv, out: 832, kernel: 3, padding: 1}\n"
    )
    return str(path)


def test_the_googlenet_spec_is_a_candidate_of_a_space_around_it(tmp_path):
    # In googlenet.yaml 3b's ch1x1 is 128; tying it to 3a's leaves the base out...
    space = load_space(_googlenet_space(tmp_path))
    with pytest.raises(SpecError):
        space.candidate({"w3": 64, "blocks.3a.ch3x3": 128, "blocks.4e": "inception", "nope": 1})
    base = space.candidate({"w3": 64, "blocks.3a.ch3x3": 128, "blocks.4e": "inception"})
    assert base.blocks[1].ch1x1 == 64 and base != archbuilder.load_spec(GOOGLENET)
    # ...so untie it: then googlenet.yaml itself is one of the candidates.
    path = tmp_path / "googlenet-space.yaml"
    path.write_text(path.read_text().replace("{same: w3}", "{choice: [96, 128]}"))
    space = load_space(str(path))
    choices = {"w3": 64, "blocks.3a.ch3x3": 128, "blocks.3b.ch1x1": 128, "blocks.4e": "inception"}
    spec = space.candidate(choices)
    assert spec == archbuilder.load_spec(GOOGLENET)
    summary = archbuilder.summarize(spec)
    assert (summary.inference_params, summary.params) == (7_013_112, 13_393_352)  # the published counts
    found = [c for c in space.enumerate() if c.choices == choices]
    assert len(found) == 1 and found[0].params == 13_393_352


def test_a_decision_over_a_base_layer_replaces_it(tmp_path):
    space = load_space(_googlenet_space(tmp_path))
    decision = space.decisions[-1]
    assert decision.name == "blocks.4e" and decision.labels == ("inception", "conv")
    assert decision.location[0].endswith("googlenet-space.yaml")  # where the choice is written
    conv = space.evaluate({"w3": 64, "blocks.3a.ch3x3": 128, "blocks.4e": "conv"})
    assert conv.valid and {block.name: block.kind for block in conv.spec.blocks}["4e"] == "conv"


def test_budgets_with_suffixes_rule_candidates_out(tmp_path):
    constraints = "constraints: {max_params: 13.4M, max_macs: 1.59G}\n"
    space = load_space(_googlenet_space(tmp_path, constraints))
    verdicts = list(space.enumerate(include_invalid=True))
    assert len(verdicts) == 3 * 3 * 2 and all(c.stage in (None, "constraints") for c in verdicts)
    for candidate in verdicts:
        summary = archbuilder.summarize(candidate.spec)
        fits = summary.params <= 13_400_000 and summary.inference_macs <= 1_590_000_000
        assert candidate.valid == fits, candidate.choices


def test_max_activation_bytes_against_a_hand_count():
    # input 3×32×32 and one conv w×32×32 are alive at once: (3 + w)·1024·4 bytes.
    space = load_space(
        """
name: memory
input: {channels: 3, height: 32, width: 32}
defaults: {conv: {norm: none, activation: none}}
constraints: {max_activation_bytes: 100KB}
blocks:
  - {name: c1, kind: conv, out: {choice: [8, 16, 32]}, kernel: 3, padding: 1}
"""
    )
    verdicts = {c.choices["blocks.c1.out"]: c for c in space.enumerate(include_invalid=True)}
    assert verdicts[8].activation_bytes == (3 + 8) * 1024 * 4
    assert verdicts[16].valid and not verdicts[32].valid
    assert "over max_activation_bytes 100,000" in verdicts[32].reason


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("5M", 5_000_000),
        ("1.5G", 1_500_000_000),
        ("500K", 500_000),
        (7, 7),
        ("64Mi", 64 * 2**20),
        ("2e3", 2000),
    ],
)
def test_amounts(text, amount):
    assert archbuilder.space.parse_amount(text) == amount


def test_errors_are_located_with_did_you_mean():
    bad = """
name: bad
input: {channels: 1, height: 8, width: 8}
constraints: {max_param: 5M, max_macs: lots, min_params: 6M, max_params: 5M}
blocks:
  - {name: c1, kind: conv, out: {choise: [8]}, kernel: {choice: [1, 3, 3]}}
  - {name: c2, kind: conv, out: {choice: [8], idd: x}, kernel: {range: {low: 5, high: 2}}}
  - {name: c3, kind: conv, out: {same: w}, kernel: {range: {low: 1, high: 6, step: 2}}}
"""
    with pytest.raises(SpecError) as caught:
        load_space(bad)
    lines = str(caught.value).splitlines()[1:]
    expected = [
        ("<spec>:4:15: constraints.max_param:", "did you mean 'max_params'?"),
        ("<spec>:4:30: constraints.max_macs:", "expected a number such as 5000000, 5M or 1.5G"),
        ("<spec>:4:46: constraints.min_params:", "is above max_params"),
        ("<spec>:6:34: blocks.0.out.choise:", "did you mean 'choice'?"),
        ("<spec>:6:72: blocks.0.kernel.choice.2:", "option 3 is listed twice"),
        ("<spec>:7:47: blocks.1.out.idd:", "did you mean 'id'?"),
        ("<spec>:7:65: blocks.1.kernel.range:", "low 5 is above high 2"),
        ("<spec>:8:34: blocks.2.out.same:", "no decision named 'w'"),
        ("<spec>:8:53: blocks.2.kernel.range:", "use high: 5"),
    ]
    assert len(lines) == len(expected)
    for line, (where, what) in zip(lines, expected):
        assert line.strip().startswith(where) and what in line, line


def test_a_space_with_no_valid_candidate_says_why_each_option_failed():
    with pytest.raises(SpecError) as caught:
        load_space(
            """
name: empty
input: {channels: 1, height: 8, width: 8}
blocks:
  - {name: c1, kind: conv, out: 8, kernel: {choice: [9, 0, 11]}}
"""
        )
    text = str(caught.value)
    assert "no valid candidate in this space" in text
    line = next(line for line in text.splitlines() if "no option of 'blocks.c1.kernel'" in line)
    assert line.strip().startswith("<spec>:5:45: blocks.0.kernel:")
    assert "9 → " in line and "0 → " in line and "11 → " in line
    assert "smaller than the kernel's extent 9" in line and "got 0" in line


def test_enumerate_refuses_a_continuous_range():
    space = load_space(
        """
name: rates
input: {channels: 1, height: 8, width: 8}
blocks:
  - {kind: flatten}
  - {kind: dropout, p: {range: {low: 0.0, high: 0.5}}}
  - {kind: linear, out: 3}
"""
    )
    assert math.isinf(space.size)
    with pytest.raises(SpecError, match="continuous range"):
        space.enumerate()
    assert all(0.0 <= c.spec.blocks[1].p <= 0.5 for c in space.sample(5, seed=0))


def test_candidate_checks_the_choices():
    space = load_space(SMALL)
    with pytest.raises(SpecError, match=r"no decision named 'ww' \(did you mean 'w'\?\)"):
        space.candidate({"ww": 8})
    with pytest.raises(SpecError, match=r"12 is not a value of 'w': 8 \| 16 \| 64"):
        space.candidate({"w": 12, "blocks.c1.kernel": 3, "blocks.b": "null"})
    with pytest.raises(SpecError, match=r"no value given for decision 'blocks.b\[conv\].out'"):
        space.candidate({"w": 8, "blocks.c1.kernel": 3, "blocks.b": "conv"})
    with pytest.raises(SpecError, match="over max_params"):
        space.candidate({"w": 64, "blocks.c1.kernel": 3, "blocks.b": "inception"})
    spec = space.candidate({"w": 8, "blocks.c1.kernel": 3, "blocks.b": "conv", "blocks.b[conv].out": 16})
    assert spec.blocks[1].out == 16


def test_spaces_import_no_torch():
    code = f"""
import sys
import archbuilder
space = archbuilder.load_space({SMALL!r})
space.sample(3, seed=0)
list(space.enumerate())
assert "torch" not in sys.modules, "torch was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_sampled_choices_rebuild_their_spec(tmp_path):
    for space in (load_space(SMALL), load_space(_googlenet_space(tmp_path))):
        for candidate in space.sample(6, seed=3):
            assert space.candidate(candidate.choices) == candidate.spec


def test_enumerate_is_lazy_on_a_huge_space(tmp_path):
    # Every Inception width of GoogLeNet a choice of three: 3^54 combinations.
    base = archbuilder.load_spec(GOOGLENET)
    widths = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")
    lines = [f"extends: {GOOGLENET}", "blocks:"]
    for block in (b for b in base.blocks if b.kind == "inception"):
        fields = ", ".join(f"{key}: {{choice: [{getattr(block, key)}, 7, 9]}}" for key in widths)
        lines.append(f"  {block.name}: {{{fields}}}")
    space = load_space("\n".join(lines) + "\n")
    assert space.size == 3**54
    first = next(space.enumerate())  # the first option everywhere: googlenet.yaml itself
    assert first.spec == base and first.params == 13_393_352


def test_a_tied_range_and_a_tied_layer():
    space = load_space(
        """
name: tied
input: {channels: 3, height: 8, width: 8}
blocks:
  - {name: a, kind: conv, kernel: 1, out: {range: {low: 4, high: 12, step: 4}, id: w}}
  - choice:
    - {kind: conv, kernel: 3, padding: 1, out: {same: w}}
    - {kind: maxpool, kernel: 2}
    id: layer
  - {same: layer}
"""
    )
    assert space.size == 3 * 2
    for candidate in space.enumerate():
        a, b, c = candidate.spec.blocks
        assert b.kind == c.kind == candidate.choices["layer"]  # the same layer twice
        assert b.model_dump(exclude={"name"}) == c.model_dump(exclude={"name"})
        if b.kind == "conv":
            assert a.out == b.out == candidate.choices["w"]


def test_same_cannot_chain():
    with pytest.raises(SpecError, match="leads back here through other sames"):
        load_space(
            """
name: t
input: {channels: 3, height: 8, width: 8}
blocks:
  - {kind: conv, kernel: 1, out: {choice: [{same: b}, 4], id: a}}
  - {kind: conv, kernel: 1, out: {choice: [{same: a}, 4], id: b}}
"""
        )


def test_a_draw_is_uniform_over_the_raw_combinations():
    # A choice between a conv with three widths and a pool: 3 + 1 = 4 combinations, so a
    # uniform draw takes the conv three times in four (not one in two).
    space = load_space(
        """
name: u
input: {channels: 1, height: 4, width: 4}
blocks:
  - choice:
    - {kind: conv, kernel: 1, out: {choice: [2, 3, 4]}}
    - {kind: maxpool, kernel: 2}
"""
    )
    assert space.size == 4
    firsts = [space.sample(1, seed=seed)[0].choices["blocks.0"] for seed in range(1200)]
    share = firsts.count("conv") / len(firsts)
    assert abs(share - 0.75) < 0.05  # 4.0 standard deviations of 1,200 draws
