"""torch module import (torch.fx), against torchvision's GoogLeNet and the shipped spec."""

from __future__ import annotations

import pytest

import archbuilder
from archbuilder.importers import ImportFailure, import_module

from .conftest import SPECS

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
nn = torch.nn


def _ops(ir, aux_names=()):
    return [(op.kind, op.shape, op.params, op.macs) for op in ir.ops() if op.kind != "input"]


@pytest.mark.slow
def test_torchvision_googlenet_is_the_shipped_torchvision_spec():
    module = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    result = import_module(module, torch.randn(1, 3, 224, 224))
    imported = archbuilder.lower(result.spec)
    shipped = archbuilder.lower(archbuilder.load_spec(SPECS / "googlenet-torchvision.yaml"))
    assert (
        imported.total()
        == shipped.total()
        == (sum(p.numel() for p in module.parameters()), shipped.total()[1])
    )
    assert _ops(imported) == _ops(shipped)
    assert [(h.tap, h.loss_weight) for h in result.spec.aux_heads] == [("4a", 0.3), ("4d", 0.3)]
    built = archbuilder.build(result.spec).eval()
    built.load_state_dict(result.state_dict())
    module.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(built(x), module(x), rtol=1e-5, atol=1e-5)


def test_a_small_module_with_its_weights():
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False),
        nn.Conv2d(8, 16, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(16, 5),
    )
    with torch.no_grad():
        module[1].running_mean.normal_()
        module[1].running_var.uniform_(0.5, 1.5)
    result = import_module(module.eval(), torch.randn(1, 3, 16, 16))
    kinds = [layer.kind for layer in [*result.spec.stem, *result.spec.blocks, *result.spec.head]]
    assert kinds == ["conv", "maxpool", "separable", "global_avgpool", "flatten", "dropout", "linear"]
    built = archbuilder.build(result.spec).eval()
    built.load_state_dict(result.state_dict())
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(built(x), module(x), rtol=1e-5, atol=1e-6)


class _Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up = nn.ConvTranspose2d(4, 4, 2)

    def forward(self, x):
        return torch.sin(self.up(self.conv(x)))


def test_unsupported_modules_and_functions_are_listed():
    with pytest.raises(ImportFailure) as failure:
        import_module(_Odd(), torch.randn(1, 3, 8, 8))
    assert [(p.node, p.op) for p in failure.value.problems] == [("up", "up"), ("sin", "sin")]
    assert "ConvTranspose2d" in str(failure.value)


@pytest.mark.slow
def test_torchvision_inception_v3_is_the_shipped_inception_v3_spec():
    module = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    result = import_module(module, torch.randn(1, 3, 299, 299))
    imported = archbuilder.lower(result.spec)
    shipped = archbuilder.lower(archbuilder.load_spec(SPECS / "inception-v3.yaml"))
    assert imported.total() == shipped.total()
    assert imported.total()[0] == sum(p.numel() for p in module.parameters())
    assert [(h.name, h.tap) for h in result.spec.aux_heads] == [("AuxLogits", "Mixed_6e")]
    built = archbuilder.build(result.spec).eval()
    built.load_state_dict(result.state_dict())
    module.eval()
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        expected, got = module(x), built(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5
