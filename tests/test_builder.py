"""The torch builder: names, init, outputs, loss, options and limits."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archbuilder
from archbuilder.builder import ArchModel, ParallelBlock
from archbuilder.ir.names import RESERVED_NAMES

from .test_spec import SMALL

AUX = (
    SMALL
    + """
aux_heads:
  - name: late
    tap: mix
    loss_weight: 0.5
    layers: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]
  - name: early
    tap: conv2
    loss_weight: 0.25
    layers: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]
"""
)


def test_module_names_follow_the_spec():
    model = archbuilder.build(SMALL)
    names = [name for name, _ in model.named_children()]
    assert names == ["conv1", "conv2", "maxpool1", "mix", "global_avgpool1", "flatten1", "linear1"]
    assert "mix.left.conv1.conv.weight" in model.state_dict()
    assert "conv2.bn.running_var" in model.state_dict()


def test_reserved_names_cover_every_model_attribute():
    public = {
        name
        for cls in (ArchModel, ParallelBlock, nn.Sequential)
        for name in dir(cls)
        if not name.startswith("_")
    }
    public |= {"spec", "merge", "aux_names", "aux_weights"}  # instance attributes
    assert public <= RESERVED_NAMES


def test_init_is_deterministic_under_manual_seed():
    torch.manual_seed(7)
    first = archbuilder.build(SMALL).state_dict()
    torch.manual_seed(7)
    second = archbuilder.build(SMALL).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_init_scheme(googlenet_path):
    torch.manual_seed(0)
    model = archbuilder.build(googlenet_path)
    conv = model.get_submodule("4e.branch3x3.conv.conv")  # 320 × 160 × 3 × 3
    fan_out = 320 * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.02)
    assert torch.count_nonzero(conv.bias) == 0
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.02)
    bn = model.get_submodule("4e.branch3x3.conv.bn")
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_every_tensor_is_written_at_build(googlenet_path):
    # Modules are made on the meta device and given uninitialized memory; nothing may keep it.
    torch.manual_seed(0)
    model = archbuilder.build(googlenet_path)
    for name, tensor in model.state_dict().items():
        assert tensor.device.type == "cpu", name
        if name.endswith("running_mean"):
            assert torch.all(tensor == 0), name
        elif name.endswith("running_var"):
            assert torch.all(tensor == 1), name
        elif name.endswith("num_batches_tracked"):
            assert tensor.item() == 0, name
        elif name.endswith("bias"):
            assert torch.all(tensor == 0), name
        elif name.endswith("bn.weight"):
            assert torch.all(tensor == 1), name
        else:
            # Conv weights: Kaiming normal, fan-out, ReLU gain (He et al. 2015): std
            # sqrt(2 / (out channels × kernel area)). Linear: std 0.01. Memory left as it
            # was given (zeros or garbage) would miss the std.
            assert tensor.dim() in (2, 4), name
            std = 0.01 if tensor.dim() == 2 else (2 / (tensor.shape[0] * tensor[0, 0].numel())) ** 0.5
            assert tensor.std().item() == pytest.approx(std, rel=0.1), name
            assert abs(tensor.mean().item()) < 5 * std / tensor.numel() ** 0.5, name


def test_aux_outputs_in_tap_order_with_their_weights():
    torch.manual_seed(0)
    model = archbuilder.build(AUX).train()
    x = torch.randn(3, 3, 16, 16)
    outputs = model(x)
    # 'early' taps conv2, which runs before mix, so it comes first though the spec lists it second.
    assert model.aux_names == ("early", "late") and model.aux_weights == (0.25, 0.5)
    assert len(outputs.aux) == 2
    # Each aux output is its own head applied to its tap's output, run here layer by layer.
    conv2 = model.conv2(model.conv1(x))
    mix = model.mix(model.maxpool1(conv2))
    torch.testing.assert_close(outputs.aux[0], model.early(conv2), rtol=0, atol=0)
    torch.testing.assert_close(outputs.aux[1], model.late(mix), rtol=0, atol=0)
    assert not torch.allclose(model.early(mix), model.late(mix))  # the heads differ, so order shows


def test_compute_loss_weights_the_aux_losses():
    torch.manual_seed(0)
    model = archbuilder.build(AUX).train()
    x, target = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    outputs = model(x)
    expected = (
        F.cross_entropy(outputs.logits, target)
        + 0.25 * F.cross_entropy(outputs.aux[0], target)
        + 0.5 * F.cross_entropy(outputs.aux[1], target)
    )
    torch.testing.assert_close(model.compute_loss(outputs, target), expected)
    model.eval()
    logits = model(x)
    torch.testing.assert_close(model.compute_loss(logits, target), F.cross_entropy(logits, target))


def test_eval_returns_a_tensor_and_aux_false_drops_heads():
    model = archbuilder.build(AUX, aux=False)
    assert not hasattr(model, "late")
    assert isinstance(model.train()(torch.randn(2, 3, 16, 16)), torch.Tensor)
    assert isinstance(archbuilder.build(AUX).eval()(torch.randn(2, 3, 16, 16)), torch.Tensor)


def test_num_classes_override(googlenet_path):
    model = archbuilder.build(googlenet_path, num_classes=10, aux=False)
    assert model.fc.out_features == 10
    assert model.spec.num_classes == 10
    with pytest.raises(ValueError):
        archbuilder.build(googlenet_path, num_classes=0)


def test_parameter_memory_limit_refuses_before_allocating():
    huge = SMALL.replace("{kind: linear, out: num_classes}", "{kind: linear, out: 1000000}")
    with pytest.raises(archbuilder.SpecError, match="over the limit"):
        archbuilder.build(huge, max_param_bytes=1 << 20)


def test_add_merge_and_identity_branch_compute_a_residual():
    text = """
name: residual
input: {channels: 2, height: 4, width: 4}
blocks:
  - name: res
    kind: branches
    merge: add
    branches:
      - {name: shortcut}
      - {name: body, layers: [{kind: conv, out: 2, kernel: 1, norm: none, activation: none, bias: false}]}
"""
    model = archbuilder.build(text).eval()
    with torch.no_grad():
        model.res.body.conv1.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1) * 3)
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(model(x), 4 * x)
    assert isinstance(model.res.shortcut, nn.Identity)


def test_standalone_activation_after_a_tap_keeps_the_aux_input_intact():
    text = """
name: tapped
input: {channels: 2, height: 4, width: 4}
blocks:
  - {name: c, kind: conv, out: 2, kernel: 1, activation: none}
  - {name: act, kind: activation, function: relu}
aux_heads:
  - {name: aux, tap: c, loss_weight: 1, layers: [{kind: flatten}, {kind: linear, out: 2}]}
"""
    model = archbuilder.build(text).train()
    outputs = model(torch.randn(3, 2, 4, 4))
    model.compute_loss(outputs.aux[0], torch.tensor([0, 1, 0])).backward()  # no in-place autograd error
