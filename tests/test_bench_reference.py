"""`archbuild bench`'s torchvision comparison: a twin where torchvision has one, else the
nearest reference, labelled as such (issue 25: `bench googlenet` showed no comparison)."""

from __future__ import annotations

import warnings

import pytest

import archbuilder
from archbuilder.benchmarks.bench_reference import NEAREST, NEAREST_SUFFIX, reference_for
from archbuilder.benchmarks.precision_bench import TWINS
from archbuilder.cli.main import main as archbuild
from archbuilder.diff import diff

torchvision = pytest.importorskip("torchvision")

# The fields that differ from torchvision's GoogLeNet (as the shipped googlenet-torchvision) to
# googlenet, and what the nearest reference's description says of each.
GOOGLENET_DIFFERENCES = {
    "defaults.conv.bias": "no conv bias",
    "defaults.conv.bn_eps": "batch-norm eps 1e-3",
    "kernel_5x5": 'a 3×3 conv in the "5×5" branch of every Inception block',
    "pool.ceil_mode": "ceil-mode max pools",
    "ceil_mode": "ceil-mode max pools",
    "padding": "max pools without padding",
    "kernel": "a 2×2 pool before 5a",
    "p": "dropout 0.2",
}


def torchvision_googlenet_params() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.googlenet(
            weights=None, aux_logits=False, init_weights=True, transform_input=False
        )
    return sum(p.numel() for p in model.parameters())


def test_twins_are_exact_and_googlenet_has_a_nearest_reference():
    for name in TWINS:
        assert reference_for(name).exact and reference_for(name).builder == TWINS[name][0]
    nearest = reference_for("googlenet")
    assert nearest is NEAREST["googlenet"] and not nearest.exact
    assert (nearest.builder, nearest.twin_spec) == ("googlenet", "googlenet-torchvision")
    assert reference_for("googlenet-torchvision").exact  # the spec of torchvision's layout
    assert reference_for("resnet50") is None and reference_for("no-such-spec") is None


def test_googlenet_nearest_reference_is_torchvisions_googlenet_with_random_weights():
    model = NEAREST["googlenet"].make()
    ours = sum(p.numel() for p in model.parameters())
    assert ours == torchvision_googlenet_params() == 6_624_904
    assert not model.training and model.aux1 is None and not model.transform_input
    # its twin spec counts the same; googlenet itself has more (5×5 convs, conv bias)
    assert archbuilder.summarize("googlenet-torchvision").inference_params == 6_624_904
    assert archbuilder.summarize("googlenet").inference_params == 7_013_112


def test_googlenet_nearest_reference_names_every_difference():
    """Every field that differs between the spec of torchvision's layout and googlenet is in
    the nearest reference's description (name and description aside)."""
    result = diff("googlenet-torchvision", "googlenet")
    fields = {f.path for f in result.spec_fields} | {f.path for e in result.changed for f in e.fields}
    assert fields - {"name", "description"} == set(GOOGLENET_DIFFERENCES)
    differences = NEAREST["googlenet"].differences
    assert [phrase for phrase in GOOGLENET_DIFFERENCES.values() if phrase not in differences] == []


@pytest.mark.slow  # builds and times the full-size GoogLeNet and torchvision's
def test_bench_googlenet_prints_the_nearest_reference_labelled(capsys):
    assert archbuild(["bench", "googlenet", "--batch", "1", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("googlenet, batch 1, fp32: median of 1 interleaved calls")
    assert lines[1].split() == ["model", "ms", "/", "batch", "images", "/", "s", "vs", "torchvision", "fp32"]
    rows = {line[:26].strip(): line[26:].split() for line in lines[2:4]}
    assert set(rows) == {"archbuilder fp32", f"torchvision fp32{NEAREST_SUFFIX}"}
    assert rows[f"torchvision fp32{NEAREST_SUFFIX}"][-1] == "1.00×"
    note = " ".join(line.strip() for line in lines[4:])
    assert note.startswith('The "(nearest)" rows: torchvision has no twin of googlenet;')
    assert "torchvision's googlenet with random weights of its own" in note
    assert "6,624,904 parameters and 1.50 G MACs to the spec's 7,013,112 and 1.58 G" in note
    assert NEAREST["googlenet"].differences in note


def test_a_reference_is_the_same_model_every_time_and_leaves_the_callers_random_state_alone():
    """It seeds torchvision's initialisation inside a fork of the generator: the same weights
    twice, and the caller's generator state the same after as before."""
    import torch

    reference = reference_for("googlenet")
    torch.manual_seed(123)
    before = torch.random.get_rng_state().clone()
    first, second = reference.make(), reference.make()
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
