"""BN-Inception, Inception-v4 and Inception-ResNet-v2 against the implementations the field uses.

The truths: the published parameter counts; MACs per block counted by hand from the papers'
widths; and the reference modules themselves (pretrainedmodels' bninception, timm's
inception_v4 and inception_resnet_v2, built with random weights): their parameter count,
state-dict tensors, the output shape of every top-level block (forward hooks), their MACs
(counted from the tensors torch produces) and their eval-mode outputs after
``load_weights``, with randomized batch-norm statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder.interop import load_weights

from .conftest import SPECS
from .shape_check import assert_holds_every_tensor, counted_macs, run_with_hooks
from .test_interop import TOLERANCE, randomized, relative_error

timm = pytest.importorskip("timm")

PUBLISHED = {"bn-inception": 11_295_240, "inception-v4": 42_679_816, "inception-resnet-v2": 55_843_464}


def summary_macs(spec: str) -> dict[str, int]:
    return {row.name: row.macs for row in archbuilder.summarize(SPECS / f"{spec}.yaml").rows}


@pytest.mark.parametrize("spec", sorted(PUBLISHED))
def test_parameter_counts_are_the_published_ones_with_and_without_aux(spec):
    ir = archbuilder.lower(archbuilder.load_spec(SPECS / f"{spec}.yaml"))
    assert ir.total(aux=True)[0] == ir.total(aux=False)[0] == PUBLISHED[spec]  # none has an aux head


# -- MACs per block, by hand (k·k·C_in·C_out·H·W per conv) ----------------------------------


def test_inception_v4_block_macs_by_hand():
    macs = summary_macs("inception-v4")
    a = 384 * 96 + (384 * 64 + 9 * 64 * 96) + (384 * 64 + 9 * 64 * 96 + 9 * 96 * 96) + 384 * 96
    assert macs["Mixed_5b"] == macs["Mixed_5e"] == a * 35 * 35
    reduction_a = 9 * 384 * 384 * 17 * 17 + (384 * 192 + 9 * 192 * 224) * 35 * 35 + 9 * 224 * 256 * 17 * 17
    assert macs["Mixed_6a"] == reduction_a
    b = (
        1024 * 384
        + (1024 * 192 + 7 * 192 * 224 + 7 * 224 * 256)
        + (1024 * 192 + 7 * 192 * 192 + 7 * 192 * 224 + 7 * 224 * 224 + 7 * 224 * 256)
        + 1024 * 128
    )
    assert macs["Mixed_6b"] == macs["Mixed_6h"] == b * 17 * 17
    reduction_b = (1024 * 192 + 1024 * 256 + 7 * 256 * 256 + 7 * 256 * 320) * 17 * 17 + (
        9 * 192 * 192 + 9 * 320 * 320
    ) * 8 * 8
    assert macs["Mixed_7a"] == reduction_b
    c = (
        1536 * 256
        + (1536 * 384 + 2 * 3 * 384 * 256)
        + (1536 * 384 + 3 * 384 * 448 + 3 * 448 * 512 + 2 * 3 * 512 * 256)
        + 1536 * 256
    )
    assert macs["Mixed_7b"] == macs["Mixed_7d"] == c * 8 * 8


def test_inception_resnet_v2_block_macs_by_hand():
    macs = summary_macs("inception-resnet-v2")
    # the Inception branches, then the 1×1 projection back to the block's input width
    block35 = 320 * 32 + (320 * 32 + 9 * 32 * 32) + (320 * 32 + 9 * 32 * 48 + 9 * 48 * 64) + 128 * 320
    assert macs["block35_1"] == macs["block35_10"] == block35 * 35 * 35
    block17 = 1088 * 192 + (1088 * 128 + 7 * 128 * 160 + 7 * 160 * 192) + 384 * 1088
    assert macs["block17_1"] == macs["block17_20"] == block17 * 17 * 17
    block8 = 2080 * 192 + (2080 * 192 + 3 * 192 * 224 + 3 * 224 * 256) + 448 * 2080
    assert macs["block8_1"] == macs["block8_9"] == macs["block8_10"] == block8 * 8 * 8


def test_bn_inception_block_macs_by_hand():
    macs = summary_macs("bn-inception")
    module_3a = 192 * 64 + (192 * 64 + 9 * 64 * 64) + (192 * 64 + 9 * 64 * 96 + 9 * 96 * 96) + 192 * 32
    assert macs["inception_3a"] == module_3a * 28 * 28
    reduction_3c = (320 * 128 + 320 * 64 + 9 * 64 * 96) * 28 * 28 + (9 * 128 * 160 + 9 * 96 * 96) * 14 * 14
    assert macs["inception_3c"] == reduction_3c
    assert macs["last_linear"] == 1024 * 1000


# -- against the reference modules ------------------------------------------------------------


def bninception() -> nn.Module:
    pretrainedmodels = pytest.importorskip("pretrainedmodels")  # needs six
    return pretrainedmodels.bninception(pretrained=None)


def _cat_input(module: str) -> tuple[str, str]:
    return module, "input"  # the Caffe port concatenates in forward: read the next module's input


# Our top-level entry → (reference module, whether its output or its input is that entry's output).
BN_INCEPTION_TOP = {
    "conv1_7x7_s2": ("conv1_relu_7x7", "output"),
    "pool1_3x3_s2": ("pool1_3x3_s2", "output"),
    "conv2_3x3_reduce": ("conv2_relu_3x3_reduce", "output"),
    "conv2_3x3": ("conv2_relu_3x3", "output"),
    "pool2_3x3_s2": ("pool2_3x3_s2", "output"),
    **{
        f"inception_{block}": _cat_input(f"inception_{after}_3x3_reduce")
        for block, after in zip(
            ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a"),
            ("3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b"),
        )
    },
    "inception_5b": ("global_pool", "input"),
    "global_pool": ("global_pool", "output"),
    "last_linear": ("last_linear", "output"),
}
V4_NAMES = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Mixed_3a", "Mixed_4a", "Mixed_5a"]
V4_NAMES += [f"Mixed_5{x}" for x in "bcde"] + ["Mixed_6a"] + [f"Mixed_6{x}" for x in "bcdefgh"]
V4_NAMES += ["Mixed_7a"] + [f"Mixed_7{x}" for x in "bcd"]
V4_TOP = {name: (f"features.{index}", "output") for index, name in enumerate(V4_NAMES)}
V4_TOP["last_linear"] = ("last_linear", "output")
IRV2_TOP = {
    **{name: (name, "output") for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a")},
    **{name: (name, "output") for name in ("conv2d_3b", "conv2d_4a", "maxpool_5a", "mixed_5b")},
    **{f"block35_{n + 1}": (f"repeat.{n}", "output") for n in range(10)},
    "mixed_6a": ("mixed_6a", "output"),
    **{f"block17_{n + 1}": (f"repeat_1.{n}", "output") for n in range(20)},
    "mixed_7a": ("mixed_7a", "output"),
    **{f"block8_{n + 1}": (f"repeat_2.{n}", "output") for n in range(9)},
    "block8_10": ("block8", "output"),
    "conv2d_7b": ("conv2d_7b", "output"),
    "classif": ("classif", "output"),
}

REFERENCES: dict[str, tuple[Callable[[], nn.Module], int, dict[str, tuple[str, str]]]] = {
    "bn-inception": (bninception, 224, BN_INCEPTION_TOP),
    "inception-v4": (lambda: timm.create_model("inception_v4"), 299, V4_TOP),
    "inception-resnet-v2": (lambda: timm.create_model("inception_resnet_v2"), 299, IRV2_TOP),
}
SLOW = pytest.mark.slow  # 40–55 M parameters at 299×299


def reference_shapes(model: nn.Module, x: torch.Tensor, top: dict[str, tuple[str, str]]) -> dict[str, tuple]:
    seen: dict[str, tuple] = {}

    def record(name: str, tensor: torch.Tensor) -> None:  # a hook that returns None changes nothing
        seen.setdefault(name, tuple(tensor.shape[1:]))

    handles = []
    for ours, (module, where) in top.items():
        target = model.get_submodule(module)
        if where == "input":
            handles.append(target.register_forward_pre_hook(lambda _m, i, name=ours: record(name, i[0])))
        else:
            handles.append(target.register_forward_hook(lambda _m, _i, o, name=ours: record(name, o)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def our_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple]:
    seen: dict[str, tuple] = {}

    def record(name: str, tensor: torch.Tensor) -> None:
        seen[name] = tuple(tensor.shape[1:])

    run_with_hooks(
        model, x, [(m, lambda _m, _i, o, name=name: record(name, o)) for name, m in model.named_children()]
    )
    return seen


@pytest.fixture(
    scope="module",
    params=[
        "bn-inception",
        pytest.param("inception-v4", marks=SLOW),
        pytest.param("inception-resnet-v2", marks=SLOW),
    ],
)
def pair(request):
    """(spec name, the reference with randomized batch norms, our model loaded from it, input)."""
    make, size, _ = REFERENCES[request.param]
    torch.manual_seed(0)
    reference = randomized(make(), size)
    ours = load_weights(archbuilder.build(SPECS / f"{request.param}.yaml"), reference).eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    return request.param, reference, ours, x


def test_parameters_and_state_dict_tensors_equal_the_reference(pair):
    spec, reference, ours, _ = pair
    assert sum(p.numel() for p in reference.parameters()) == PUBLISHED[spec]
    assert sum(p.numel() for p in ours.parameters()) == PUBLISHED[spec]
    assert (
        sum(p.numel() for p in archbuilder.build(SPECS / f"{spec}.yaml", aux=False).parameters())
        == PUBLISHED[spec]
    )
    # every reference tensor is in the loaded model (by value: the statistics are randomized)
    assert_holds_every_tensor(reference.state_dict(), ours.state_dict())


def test_every_top_level_block_has_the_reference_shape(pair):
    spec, reference, ours, x = pair
    top = REFERENCES[spec][2]
    theirs = reference_shapes(reference, x, top)
    mine = our_shapes(ours, x)
    assert set(top) <= set(mine)
    assert {name: mine[name] for name in top} == theirs
    inferred = {row.name: row.out_shape for row in archbuilder.summarize(ours.spec).rows}
    assert {name: inferred[name] for name in top} == theirs  # the shapes the IR infers, too


def test_macs_equal_the_reference_counted_from_its_tensors(pair):
    spec, reference, _, x = pair
    assert archbuilder.summarize(SPECS / f"{spec}.yaml").macs == counted_macs(reference, x[:1])


def test_eval_outputs_equal_the_reference_after_load_weights(pair):
    _, reference, ours, x = pair
    with torch.no_grad():
        theirs, mine = reference(x), ours(x)
    assert (theirs[0] - theirs[1]).abs().max() > 0.01 * theirs.abs().max()  # outputs depend on the input
    assert relative_error(mine, theirs) <= TOLERANCE
