"""optimize_for_inference: the same logits as the model it was made from, by a leaner graph."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder.builder.optimize import FusedConv, InferenceParallel
from tests.conftest import SPECS

STEPS = ("fold_bn", "fuse_siblings", "channels_last", "fuse_activations")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def trained_looking(model: nn.Module) -> nn.Module:
    """Batch-norm statistics and affine parameters away from their initial 0/1, biases nonzero,
    so that folding them is really tested."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.2, 0.2, generator=generator)
        elif isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
            module.bias.data.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()


@pytest.fixture(scope="module")
def googlenet() -> archbuilder.ArchModel:
    torch.manual_seed(0)
    return trained_looking(archbuilder.build(SPECS / "googlenet.yaml"))


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))


@pytest.mark.slow
def test_every_combination_of_steps_computes_the_same_logits(googlenet, image):
    with torch.inference_mode():
        expected = googlenet(image)
        for flags in itertools.product((False, True), repeat=len(STEPS)):
            optimized = archbuilder.optimize_for_inference(googlenet, **dict(zip(STEPS, flags)))
            assert relative_error(optimized(image), expected) <= 1e-5, dict(zip(STEPS, flags))


def test_weights_are_packed_per_input_shape(googlenet, image):
    optimized = archbuilder.optimize_for_inference(googlenet)  # packed for batch 8
    conv = next(m for m in optimized.modules() if isinstance(m, FusedConv))
    assert list(conv._packed) == [(8, 3, 224, 224)]
    with torch.inference_mode():
        for batch in (image[:1], image, image[:1]):
            assert relative_error(optimized(batch), googlenet(batch)) <= 1e-5
    assert list(conv._packed) == [(8, 3, 224, 224), (1, 3, 224, 224), (3, 3, 224, 224)]


def test_the_model_it_was_made_from_is_untouched(googlenet):
    before = {name: tensor.clone() for name, tensor in googlenet.state_dict().items()}
    archbuilder.optimize_for_inference(googlenet)
    after = googlenet.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(p.is_contiguous() for p in googlenet.parameters())  # not turned channels-last


def test_siblings_reading_the_block_input_become_one_conv(googlenet):
    optimized = archbuilder.optimize_for_inference(googlenet)
    blocks = [m for m in optimized.modules() if isinstance(m, InferenceParallel)]
    assert len(blocks) == 9  # 3a … 5b
    spec = {block.name: block for block in googlenet.spec.blocks if block.kind == "inception"}
    for block, name in zip(blocks, ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]):
        widths = spec[name]
        (head,) = block.heads  # the 1×1 conv and both 1×1 reductions, one conv
        assert head.weight.shape[0] == widths.ch1x1 + widths.ch3x3red + widths.ch5x5red
        assert head.weight.shape[2:] == (1, 1)
        assert block.routes == (
            (0, 0, widths.ch1x1),
            (0, widths.ch1x1, widths.ch3x3red),
            (0, widths.ch1x1 + widths.ch3x3red, widths.ch5x5red),
            None,  # the pool branch reads the input itself
        )


def test_batch_norm_and_dropout_are_gone_and_aux_heads_left_out(googlenet):
    optimized = archbuilder.optimize_for_inference(googlenet)
    kinds = {type(m) for m in optimized.modules()}
    assert nn.BatchNorm2d not in kinds and nn.Dropout not in kinds
    # 57 convs in the body (3 stem + 6 per block × 9), less the 2 saved per block by fusion
    assert sum(isinstance(m, FusedConv) for m in optimized.modules()) == 3 + 9 * 4
    # Folding removes each body batch norm's weight and bias (googlenet.yaml's convs already
    # have a bias to fold into); the aux heads are not carried.
    body = [googlenet.get_submodule(name) for name in googlenet.body_names]
    bn_params = sum(2 * m.num_features for b in body for m in b.modules() if isinstance(m, nn.BatchNorm2d))
    kept = sum(t.numel() for t in optimized.state_dict().values())
    assert kept == archbuilder.summarize(googlenet.spec).inference_params - bn_params


def test_activations_other_than_relu_and_convs_without_norm():
    spec = archbuilder.load_spec(
        """
name: mixed
input: {channels: 3, height: 20, width: 20}
num_classes: 5
defaults: {conv: {norm: none, activation: silu, bias: true}}
stem:
  - {name: conv1, kind: conv, out: 8, kernel: 3, padding: 1}
blocks:
  - name: mix
    kind: branches
    merge: concat
    branches:
      - {name: a, layers: [{name: c, kind: conv, out: 4, kernel: 1, activation: none}]}
      - {name: b, layers: [{name: c, kind: conv, out: 6, kernel: 1}, {name: d, kind: conv, out: 6, kernel: 3, padding: 1}]}
      - {name: c, layers: [{name: c, kind: conv, out: 5, kernel: 1, activation: gelu}]}
      - {name: d, layers: [{name: c, kind: conv, out: 3, kernel: 1}]}
head:
  - {name: pool, kind: global_avgpool}
  - {name: flatten, kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""
    )
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(spec))
    optimized = archbuilder.optimize_for_inference(model)
    (block,) = [m for m in optimized.modules() if isinstance(m, InferenceParallel)]
    # only b and d share kernel and activation (silu); a (none) and c (gelu) stay on their own
    assert [head.weight.shape[0] for head in block.heads] == [6 + 3]
    assert block.routes == (None, (0, 0, 6), None, (0, 6, 3))
    x = torch.randn(4, 3, 20, 20)
    with torch.inference_mode():
        assert relative_error(optimized(x), model(x)) <= 1e-5


def test_scaled_residual_adds_and_nested_branches():
    spec = archbuilder.load_spec(
        """
name: residual
input: {channels: 3, height: 16, width: 16}
num_classes: 4
defaults: {conv: {norm: batch, activation: relu, bias: false}}
stem:
  - {name: conv1, kind: conv, out: 8, kernel: 3, padding: 1}
blocks:
  - name: res
    kind: branches
    merge: add
    activation: relu
    branches:
      - {name: skip, layers: []}
      - name: body
        scale: 0.2
        layers:
          - {name: c1, kind: conv, out: 8, kernel: 1}
          - name: fork
            kind: branches
            branches:
              - {name: x, layers: [{name: c, kind: conv, out: 4, kernel: [1, 3], padding: [0, 1]}]}
              - {name: y, layers: [{name: c, kind: conv, out: 4, kernel: [3, 1], padding: [1, 0]}]}
head:
  - {name: pool, kind: global_avgpool}
  - {name: flatten, kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""
    )
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(spec))
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        for flags in itertools.product((False, True), repeat=len(STEPS)):
            optimized = archbuilder.optimize_for_inference(model, **dict(zip(STEPS, flags)))
            assert relative_error(optimized(x), model(x)) <= 1e-5


def test_eval_only_and_only_for_built_models(googlenet):
    optimized = archbuilder.optimize_for_inference(googlenet)
    assert not optimized.training
    with pytest.raises(RuntimeError, match="eval only"):
        optimized.train()
    with pytest.raises(TypeError, match=r"archbuilder\.build"):
        archbuilder.optimize_for_inference(nn.Sequential(nn.Conv2d(3, 3, 1)))


@pytest.mark.parametrize(
    "function", ["relu", "relu6", "leaky_relu", "gelu", "silu", "hardswish", "sigmoid", "tanh"]
)
def test_every_spec_activation_fuses_to_the_same_result(function):
    spec = archbuilder.load_spec(
        f"""
name: act
input: {{channels: 3, height: 12, width: 12}}
num_classes: 3
defaults: {{conv: {{norm: batch, activation: {function}}}}}
blocks:
  - {{name: conv1, kind: conv, out: 8, kernel: 3, padding: 1}}
  - {{name: conv2, kind: conv, out: 8, kernel: 3, stride: 2}}
head:
  - {{name: pool, kind: global_avgpool}}
  - {{name: flatten, kind: flatten}}
  - {{name: fc, kind: linear, out: num_classes}}
"""
    )
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(spec))
    optimized = archbuilder.optimize_for_inference(model)
    onednn = {m.onednn for m in optimized.modules() if isinstance(m, FusedConv)}
    assert onednn == {torch.backends.mkldnn.is_available()}  # every conv, on either kind of machine
    x = torch.randn(2, 3, 12, 12) * 3  # reaches relu6's and hardswish's upper bends
    with torch.inference_mode():
        assert relative_error(optimized(x), model(x)) <= 1e-5


TWO_BLOCKS = """
name: two-blocks
input: {channels: 3, height: 32, width: 32}
num_classes: 10
defaults: {conv: {norm: batch, activation: relu, bias: false}}
stem:
  - {name: conv1, kind: conv, out: 32, kernel: 3, padding: 1}
  - {name: pool1, kind: maxpool, kernel: 3, stride: 2, ceil_mode: true}
blocks:
  - {name: 3a, kind: inception, ch1x1: 16, ch3x3red: 24, ch3x3: 32, ch5x5red: 4, ch5x5: 8, pool_proj: 8}
  - {name: 3b, kind: inception, ch1x1: 32, ch3x3red: 32, ch3x3: 48, ch5x5red: 8, ch5x5: 24, pool_proj: 16}
head:
  - {name: avgpool, kind: global_avgpool}
  - {name: flatten, kind: flatten}
  - {name: dropout, kind: dropout, p: 0.4}
  - {name: fc, kind: linear, out: num_classes}
"""


@pytest.mark.slow
def test_an_optimized_model_compiles_with_torch_compile():
    # Two Inception blocks with the inference rewrites' every kind of module (fused sibling
    # 1×1s, fused activations, pools): more blocks would add compile time, not cases.
    spec = archbuilder.load_spec(TWO_BLOCKS)
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(spec, aux=False))
    compiled = torch.compile(archbuilder.optimize_for_inference(model, input_shape=(2, 3, 32, 32)))
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert relative_error(compiled(x), model(x)) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_shipped_spec_optimizes_to_the_same_logits(path):
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(path))
    size = (1, model.spec.input.channels, model.spec.input.height, model.spec.input.width)
    optimized = archbuilder.optimize_for_inference(model, input_shape=size)
    x = torch.randn(*size)
    with torch.inference_mode():
        assert relative_error(optimized(x), model(x)) <= 1e-5
