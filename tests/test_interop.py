"""torchvision's GoogLeNet loaded into specs/googlenet-torchvision.yaml, checked against torchvision itself."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import Tensor, nn

import archbuilder
from archbuilder.interop import (
    InteropError,
    load_torchvision_googlenet,
    load_torchvision_inception_v3,
    torchvision_input_transform,
)

from .conftest import SPECS

torchvision = pytest.importorskip("torchvision")

TORCHVISION_SPEC = SPECS / "googlenet-torchvision.yaml"
TOLERANCE = 1e-5  # max |ours − torchvision| / max |torchvision|


def randomized_googlenet(seed: int = 0, **options) -> nn.Module:
    """A torchvision GoogLeNet (eval mode) whose batch norms all hold non-trivial, distinct values."""
    torch.manual_seed(seed)
    return randomized(torchvision.models.googlenet(weights=None, init_weights=True, **options), 224)


def randomized(model: nn.Module, size: int) -> nn.Module:
    """``model`` in eval mode, its batch norms holding non-trivial, distinct values.

    Running statistics come from one train-mode pass on ``size``×``size`` inputs (so activations
    stay of order 1 through the layers and the logits depend on the input), then are perturbed
    per channel; the affine parameters and ``num_batches_tracked`` are random.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    for norm in norms:
        norm.momentum = None  # a cumulative average: the pass's own statistics
        norm.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size))
    with torch.no_grad():
        for norm in norms:
            norm.momentum = 0.1
            norm.running_mean.add_(0.2 * norm.running_var.sqrt() * torch.randn_like(norm.running_mean))
            norm.running_var.mul_(torch.empty_like(norm.running_var).uniform_(0.5, 2.0))
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0.0, 0.2)
            norm.num_batches_tracked.fill_(int(torch.randint(1, 10_000, ())))
    return model.eval()


def relative_error(ours: Tensor, theirs: Tensor) -> float:
    assert ours.shape == theirs.shape
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def dropout_off(model: nn.Module) -> nn.Module:
    """Train mode with every Dropout in eval mode: batch-norm batch statistics, no randomness."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    return model


@pytest.fixture(scope="module")
def torchvision_model() -> nn.Module:
    return randomized_googlenet(aux_logits=True)


@pytest.fixture(scope="module")
def loaded(torchvision_model) -> nn.Module:
    return load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), torchvision_model).eval()


@pytest.fixture(scope="module")
def batch() -> Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    ("torchvision_name", "model_name"),
    [
        ("conv1.conv.weight", "conv1.conv.weight"),
        ("conv2.bn.running_mean", "conv2_reduce.bn.running_mean"),
        ("conv3.bn.num_batches_tracked", "conv2.bn.num_batches_tracked"),
        ("inception3a.branch1.conv.weight", "3a.branch1x1.conv.conv.weight"),
        ("inception3b.branch2.0.bn.weight", "3b.branch3x3.reduce.bn.weight"),
        ("inception4a.branch2.1.conv.weight", "4a.branch3x3.conv.conv.weight"),
        ("inception4d.branch3.0.bn.bias", "4d.branch5x5.reduce.bn.bias"),
        ("inception4e.branch3.1.bn.running_var", "4e.branch5x5.conv.bn.running_var"),
        ("inception5b.branch4.1.conv.weight", "5b.branch_pool.proj.conv.weight"),
        ("aux1.conv.bn.running_mean", "aux1.conv.bn.running_mean"),
        ("aux2.fc1.weight", "aux2.fc1.weight"),
        ("aux2.fc2.bias", "aux2.fc2.bias"),
        ("fc.weight", "fc.weight"),
    ],
)
def test_names_map_as_documented(torchvision_model, loaded, torchvision_name, model_name):
    assert torch.equal(loaded.state_dict()[model_name], torchvision_model.state_dict()[torchvision_name])


def test_eval_outputs_equal_torchvision(torchvision_model, loaded, batch):
    with torch.no_grad():
        theirs, ours = torchvision_model(batch), loaded(batch)
    assert (theirs[0] - theirs[1]).abs().max() > 0.01 * theirs.abs().max()  # outputs depend on the input
    assert relative_error(ours, theirs) <= TOLERANCE


def test_training_outputs_and_statistics_equal_torchvision(torchvision_model, batch):
    theirs_model = dropout_off(copy.deepcopy(torchvision_model))
    ours_model = dropout_off(load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), theirs_model))
    with torch.no_grad():
        theirs, ours = theirs_model(batch), ours_model(batch)
    assert isinstance(ours, archbuilder.ModelOutputs) and len(ours.aux) == 2
    # torchvision's tuple is (logits, aux_logits2, aux_logits1); ours is in tap order: 4a, then 4d.
    assert relative_error(ours.logits, theirs.logits) <= TOLERANCE
    assert relative_error(ours.aux[0], theirs.aux_logits1) <= TOLERANCE
    assert relative_error(ours.aux[1], theirs.aux_logits2) <= TOLERANCE
    # The pass updated the running statistics the same way on both sides.
    updated = load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), theirs_model).state_dict()
    for name, tensor in ours_model.state_dict().items():
        assert torch.allclose(tensor, updated[name], rtol=TOLERANCE, atol=0), name


def test_state_dict_source(torchvision_model, loaded, batch):
    model = load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), torchvision_model.state_dict())
    assert all(torch.equal(tensor, loaded.state_dict()[name]) for name, tensor in model.state_dict().items())
    with torch.no_grad():
        assert relative_error(model.eval()(batch), torchvision_model(batch)) <= TOLERANCE


def test_aux_free_source_into_aux_free_model(batch):
    theirs_model = randomized_googlenet(seed=2, aux_logits=False)
    ours_model = archbuilder.build(TORCHVISION_SPEC, aux=False)
    assert load_torchvision_googlenet(ours_model, theirs_model) is ours_model
    with torch.no_grad():
        assert relative_error(ours_model.eval()(batch), theirs_model(batch)) <= TOLERANCE
        theirs, ours = dropout_off(theirs_model)(batch), dropout_off(ours_model)(batch)
    assert isinstance(ours, Tensor) and isinstance(theirs, Tensor)  # no aux outputs on either side
    assert relative_error(ours, theirs) <= TOLERANCE


def unchanged(model: nn.Module, before: dict[str, Tensor]) -> bool:
    return all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())


def test_source_with_aux_heads_into_a_model_without(torchvision_model):
    model = archbuilder.build(TORCHVISION_SPEC, aux=False)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InteropError, match=r"build the model with aux=True") as caught:
        load_torchvision_googlenet(model, torchvision_model)
    error = caught.value
    assert error.missing == () and error.mismatched == ()
    assert len(error.unexpected) == 20 and all(
        name.startswith(("aux1.", "aux2.")) for name in error.unexpected
    )
    assert "aux1.conv.conv.weight → aux1.conv.conv.weight (not in the model)" in str(error)
    assert unchanged(model, before)  # nothing loaded

    # The fix it suggests for inference: leave the aux tensors out.
    state = {k: v for k, v in torchvision_model.state_dict().items() if not k.startswith("aux")}
    load_torchvision_googlenet(model, state)


def test_source_without_aux_heads_into_a_model_with():
    source = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    with pytest.raises(InteropError, match=r"build the model with aux=False") as caught:
        load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), source)
    error = caught.value
    assert error.unexpected == () and error.mismatched == ()
    assert len(error.missing) == 20 and "aux2.fc2.bias" in error.missing
    assert "aux1.conv.bn.running_var ← aux1.conv.bn.running_var" in str(error)
    assert "layout" not in str(error)


def test_a_model_from_another_spec_is_refused(torchvision_model):
    model = archbuilder.build(SPECS / "googlenet.yaml")  # conv bias, true 5×5 convs, BN eps 1e-5
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InteropError) as caught:
        load_torchvision_googlenet(model, torchvision_model)
    error, message = caught.value, str(caught.value)
    assert len(error.missing) == 59 and all(name.endswith(".conv.bias") for name in error.missing)
    assert "conv2.conv.bias ← conv3.conv.bias" in message  # both names
    shapes = {(s, m): d for s, m, d in error.mismatched if d.startswith("shape")}
    assert len(shapes) == 9
    assert shapes["inception4a.branch3.1.conv.weight", "4a.branch5x5.conv.conv.weight"] == (
        "shape (48, 16, 3, 3) vs (48, 16, 5, 5)"
    )
    assert ("conv3.bn", "conv2.bn", "eps 0.001 vs 1e-05") in error.mismatched  # settings, not just shapes
    assert "built from spec 'googlenet'" in message and "specs/googlenet-torchvision.yaml" in message
    assert unchanged(model, before)


def test_batch_norm_settings_are_compared_for_module_sources(torchvision_model):
    source = copy.deepcopy(torchvision_model)
    source.inception4c.branch2[1].bn.eps = 1e-5  # same tensors, another function
    with pytest.raises(InteropError, match=r"inception4c\.branch2\.1\.bn → 4c\.branch3x3\.conv\.bn: eps"):
        load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), source)


def test_other_class_counts_and_wrapped_sources_get_their_fix():
    source = torchvision.models.googlenet(weights=None, num_classes=10, init_weights=True)
    with pytest.raises(InteropError, match=r"build it with num_classes=10") as caught:
        load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), source)
    assert {name for name, _, _ in caught.value.mismatched} == {
        f"{layer}.{tensor}" for layer in ("fc", "aux1.fc2", "aux2.fc2") for tensor in ("weight", "bias")
    }
    assert "layout" not in str(caught.value)
    load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC, num_classes=10), source)

    wrapped = nn.DataParallel(source).state_dict()
    with pytest.raises(InteropError, match=r"start with 'module\.'") as caught:
        load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC, num_classes=10), wrapped)
    assert "module.conv1.conv.weight → (no rule maps it)" in str(caught.value)


def test_a_source_of_another_type_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"not str \(load a checkpoint file with torch.load first\)"):
        load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), str(tmp_path / "googlenet.pth"))


def test_transform_input_warns_and_the_helper_reproduces_it(batch):
    theirs_model = randomized_googlenet(seed=3, aux_logits=False, transform_input=True)
    with pytest.warns(UserWarning, match=r"transform_input=True.*torchvision_input_transform"):
        ours_model = load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC, aux=False), theirs_model)
    assert torch.equal(torchvision_input_transform(batch), theirs_model._transform_input(batch))
    with torch.no_grad():
        theirs, ours = theirs_model(batch), ours_model.eval()(torchvision_input_transform(batch))
        assert relative_error(ours, theirs) <= TOLERANCE
        assert relative_error(ours_model(batch), theirs) > 1e-3  # the transform matters


def test_no_warning_without_transform_input(torchvision_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_torchvision_googlenet(archbuilder.build(TORCHVISION_SPEC), torchvision_model)


# -- Inception-v3 ------------------------------------------------------------------------------
INCEPTION_V3_SPEC = SPECS / "inception-v3.yaml"


def randomized_inception_v3(seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    return randomized(torchvision.models.inception_v3(weights=None, init_weights=True, **options), 299)


@pytest.fixture(scope="module")
def torchvision_v3() -> nn.Module:
    return randomized_inception_v3(aux_logits=True)


@pytest.fixture(scope="module")
def loaded_v3(torchvision_v3) -> nn.Module:
    return load_torchvision_inception_v3(archbuilder.build(INCEPTION_V3_SPEC), torchvision_v3).eval()


@pytest.fixture(scope="module")
def batch_299() -> Tensor:
    return torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize(
    ("torchvision_name", "model_name"),
    [
        ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.conv.weight"),
        ("Mixed_5b.branch1x1.bn.running_mean", "Mixed_5b.branch1x1.conv.bn.running_mean"),
        ("Mixed_5c.branch5x5_2.conv.weight", "Mixed_5c.branch5x5.branch5x5_2.conv.weight"),
        ("Mixed_5d.branch_pool.conv.weight", "Mixed_5d.branch_pool.conv.conv.weight"),
        ("Mixed_6a.branch3x3.conv.weight", "Mixed_6a.branch3x3.conv.conv.weight"),
        ("Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_6e.branch7x7dbl.branch7x7dbl_5.bn.bias"),
        ("Mixed_7a.branch7x7x3_4.conv.weight", "Mixed_7a.branch7x7x3.branch7x7x3_4.conv.weight"),
        ("Mixed_7b.branch3x3_2a.conv.weight", "Mixed_7b.branch3x3.branch3x3_2.a.conv.conv.weight"),
        (
            "Mixed_7c.branch3x3dbl_3b.bn.running_var",
            "Mixed_7c.branch3x3dbl.branch3x3dbl_3.b.conv.bn.running_var",
        ),
        ("AuxLogits.conv1.conv.weight", "AuxLogits.conv1.conv.weight"),
        ("AuxLogits.fc.bias", "AuxLogits.fc.bias"),
        ("fc.weight", "fc.weight"),
    ],
)
def test_inception_v3_names_map_as_documented(torchvision_v3, loaded_v3, torchvision_name, model_name):
    assert torch.equal(loaded_v3.state_dict()[model_name], torchvision_v3.state_dict()[torchvision_name])


def test_inception_v3_eval_and_training_outputs_equal_torchvision(torchvision_v3, loaded_v3, batch_299):
    ours_model = copy.deepcopy(loaded_v3)
    with torch.no_grad():
        theirs, ours = torchvision_v3.eval()(batch_299), ours_model.eval()(batch_299)
    assert (theirs[0] - theirs[1]).abs().max() > 0.01 * theirs.abs().max()  # outputs depend on the input
    assert relative_error(ours, theirs) <= TOLERANCE

    theirs_model = dropout_off(copy.deepcopy(torchvision_v3))
    with torch.no_grad():
        theirs, ours = theirs_model(batch_299), dropout_off(ours_model)(batch_299)
    assert isinstance(ours, archbuilder.ModelOutputs) and len(ours.aux) == 1
    assert relative_error(ours.logits, theirs.logits) <= TOLERANCE
    assert relative_error(ours.aux[0], theirs.aux_logits) <= TOLERANCE


def test_inception_v3_without_aux_head_and_from_a_state_dict(torchvision_v3, batch_299):
    model = archbuilder.build(INCEPTION_V3_SPEC, aux=False)
    with pytest.raises(
        InteropError, match=r"build the model with aux=True .* without its AuxLogits\.\* tensors"
    ):
        load_torchvision_inception_v3(model, torchvision_v3)
    state = {k: v for k, v in torchvision_v3.state_dict().items() if not k.startswith("AuxLogits.")}
    load_torchvision_inception_v3(model, state)
    with torch.no_grad():
        assert relative_error(model.eval()(batch_299), torchvision_v3.eval()(batch_299)) <= TOLERANCE


def test_inception_v3_refuses_another_layout(torchvision_v3):
    model = archbuilder.build(TORCHVISION_SPEC)
    with pytest.raises(InteropError) as caught:
        load_torchvision_inception_v3(model, torchvision_v3)
    message = str(caught.value)
    assert message.startswith("the torchvision Inception3 does not fit the model")
    assert "built from spec 'googlenet-torchvision'" in message and "specs/inception-v3.yaml" in message
    with pytest.raises(InteropError, match=r"start with 'module\.'"):
        load_torchvision_inception_v3(
            archbuilder.build(INCEPTION_V3_SPEC), nn.DataParallel(torchvision_v3).state_dict()
        )


def test_inception_v3_transform_input_warns_and_the_helper_reproduces_it(
    torchvision_v3, loaded_v3, batch_299
):
    theirs = copy.deepcopy(torchvision_v3).eval()
    theirs.transform_input = True
    with pytest.warns(UserWarning, match=r"Inception3 has transform_input=True"):
        ours = load_torchvision_inception_v3(copy.deepcopy(loaded_v3), theirs)
    with torch.no_grad():
        expected = theirs(batch_299)
        assert relative_error(ours.eval()(torchvision_input_transform(batch_299)), expected) <= TOLERANCE
        assert relative_error(ours(batch_299), expected) > 1e-3
