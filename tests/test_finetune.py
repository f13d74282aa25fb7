"""reset_classifier: new classifier layers found from the spec, every other weight kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder.builder import classifier_layers

from .test_spec import SMALL

SMALL_INPUT = ["input.height=96", "input.width=96", "num_classes=10"]


@pytest.fixture
def googlenet(googlenet_path):
    torch.manual_seed(0)
    return archbuilder.build(archbuilder.load_spec(googlenet_path, overrides=SMALL_INPUT))


def test_classifier_layers_are_the_spec_num_classes_layers(googlenet):
    # specs/googlenet.yaml writes `out: num_classes` on fc and on each aux head's fc2.
    assert classifier_layers(googlenet.spec) == ["fc", "aux1.fc2", "aux2.fc2"]


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_reset_keeps_every_other_weight_and_changes_the_output_shape(googlenet):
    before = {key: value.clone() for key, value in googlenet.state_dict().items()}
    googlenet.reset_classifier(3)
    after = googlenet.state_dict()
    assert after.keys() == before.keys()
    replaced = {f"{layer}.{p}" for layer in ("fc", "aux1.fc2", "aux2.fc2") for p in ("weight", "bias")}
    for key in before.keys() - replaced:
        assert torch.equal(after[key], before[key]), key
    assert after["fc.weight"].shape == (3, 1024)
    assert after["aux1.fc2.weight"].shape == after["aux2.fc2.weight"].shape == (3, 1024)
    assert googlenet.spec.num_classes == 3

    x, target = torch.randn(2, 3, 96, 96), torch.tensor([0, 2])
    outputs = googlenet.train()(x)
    assert outputs.logits.shape == (2, 3) and [a.shape for a in outputs.aux] == [(2, 3), (2, 3)]
    googlenet.compute_loss(outputs, target).backward()
    assert googlenet.eval()(x).shape == (2, 3)


def test_new_layers_follow_the_documented_init(googlenet):
    """docs/python-api.md: new linear weights normal with mean 0 and std 0.01, biases 0. Checked
    against that distribution, not against another draw: over 40,960 weights the sample mean
    is within 4 standard errors of 0, the std within 2% of 0.01, and the shares within one
    and two stds are the normal distribution's 68.3% and 95.4% (a uniform or truncated
    normal init of the same std would miss them)."""
    torch.manual_seed(11)
    googlenet.reset_classifier(40)
    for layer in (googlenet.fc, googlenet.aux1.fc2, googlenet.aux2.fc2):
        assert isinstance(layer, nn.Linear) and layer.weight.shape == (40, 1024)
        weight = layer.weight.detach().flatten().double()
        assert abs(weight.mean().item()) < 4 * 0.01 / weight.numel() ** 0.5
        assert weight.std().item() == pytest.approx(0.01, rel=0.02)
        assert (weight.abs() < 0.01).double().mean().item() == pytest.approx(0.6827, abs=0.01)
        assert (weight.abs() < 0.02).double().mean().item() == pytest.approx(0.9545, abs=0.005)
        assert torch.equal(layer.bias, torch.zeros(40))
    assert not torch.equal(googlenet.aux1.fc2.weight, googlenet.aux2.fc2.weight)


def test_reset_is_deterministic_under_manual_seed(googlenet_path):
    weights = []
    for _ in range(2):
        model = archbuilder.build(googlenet_path, num_classes=10)
        torch.manual_seed(5)
        archbuilder.reset_classifier(model, 7)
        weights.append(model.aux2.fc2.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_reset_keeps_device_dtype_and_mode(googlenet):
    googlenet.double().eval()
    googlenet.reset_classifier(4)
    assert googlenet.fc.weight.dtype == torch.float64
    assert not googlenet.fc.training and not googlenet.aux1.fc2.training
    assert googlenet(torch.randn(1, 3, 96, 96, dtype=torch.float64)).shape == (1, 4)


def test_reset_without_aux_heads_adds_none(googlenet_path):
    model = archbuilder.build(googlenet_path, aux=False, num_classes=10)
    model.reset_classifier(2)
    assert "aux1" not in dict(model.named_children())
    assert model.fc.out_features == 2


def test_layers_sized_by_the_classifier_are_replaced_too():
    spec = archbuilder.load_spec(
        SMALL.replace(
            "  - {kind: linear, out: num_classes}",
            "  - {kind: linear, out: num_classes}\n  - {name: norm, kind: batchnorm}",
        )
    )
    model = archbuilder.build(spec)
    assert classifier_layers(spec) == ["linear1", "norm"]
    conv = model.conv1.conv.weight.detach().clone()
    model.reset_classifier(6)
    assert model.norm.num_features == 6 and model.linear1.out_features == 6
    assert torch.equal(model.conv1.conv.weight, conv)
    assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 6)


def test_errors():
    explicit = archbuilder.build(SMALL.replace("num_classes: 4\n", "").replace("out: num_classes", "out: 4"))
    with pytest.raises(ValueError, match="sets no num_classes"):
        explicit.reset_classifier(3)
    model = archbuilder.build(SMALL)
    with pytest.raises(ValueError, match="positive integer"):
        model.reset_classifier(0)
    with pytest.raises(TypeError, match=r"made by archbuilder\.build"):
        archbuilder.reset_classifier(nn.Linear(2, 2), 3)
