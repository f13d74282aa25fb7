"""The residual sum without autograd: accumulated into a branch's own output (as torchvision's
``out += identity``), never into the block input or a tensor two branches share."""

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

import archbuilder
from archbuilder.builder.modules import ParallelBlock
from archbuilder.interop import load_weights


def residual(main: nn.Module, shortcut: nn.Module) -> ParallelBlock:
    return ParallelBlock([("main", main), ("shortcut", shortcut)], "add", activation=F.relu)


def test_the_sum_goes_into_the_fresh_branch_and_leaves_the_input_alone():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    block = residual(conv, nn.Identity()).eval()
    x = torch.randn(2, 4, 5, 5)
    before = x.clone()
    with torch.no_grad():
        expected = torch.relu(conv(x) + x)
        out = block(x)
    assert torch.equal(out, expected)
    assert torch.equal(x, before)  # the shortcut is the input: never written


def test_two_identity_branches_sum_out_of_place():
    block = residual(nn.Identity(), nn.Identity()).eval()
    x = torch.randn(1, 3, 2, 2)
    before = x.clone()
    with torch.no_grad():
        out = block(x)
    assert torch.equal(out, torch.relu(2 * before)) and torch.equal(x, before)


def test_a_view_of_the_input_is_not_written():
    block = residual(nn.Flatten(0, 0), nn.Identity()).eval()  # a view of x, not its own tensor
    x = torch.randn(1, 3, 2, 2)
    before = x.clone()
    with torch.no_grad():
        block(x)
    assert torch.equal(x, before)


def test_training_keeps_the_out_of_place_sum_and_its_gradients():
    conv = nn.Conv2d(3, 3, 1)
    block = residual(nn.Sequential(conv, nn.Sigmoid()), nn.Identity())  # sigmoid saves its output
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    block(x).sum().backward()
    reference = x.detach().clone().requires_grad_()
    torch.relu(torch.sigmoid(conv(reference)) + reference).sum().backward()
    assert torch.allclose(x.grad, reference.grad)


def test_resnet50_block_equals_torchvision_with_the_sum_in_place():
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).eval()
    model = archbuilder.build("resnet50").eval()
    load_weights(model, reference)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), reference(x), rtol=1e-5, atol=1e-6)
