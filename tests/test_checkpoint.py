"""Checkpoints: a saved model rebuilds from the file alone, with identical weights and outputs."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder import CheckpointError, load_checkpoint, save_checkpoint
from archbuilder.core.files import shown_path

from .test_spec import SMALL

AUX = (
    SMALL
    + """
aux_heads:
  - {name: side, tap: conv2, loss_weight: 0.4, layers: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]}
"""
)


def trained(spec=AUX, steps: int = 2, **build):
    """A model and optimizer after a few steps, so weights, BN statistics and Adam state all moved."""
    torch.manual_seed(0)
    model = archbuilder.build(spec, **build)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 4, (4,))
        loss = model.compute_loss(model.train()(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_rebuilds_an_identical_model(tmp_path):
    model, optimizer = trained()
    path = save_checkpoint(
        tmp_path / "run.pt",
        model,
        optimizer=optimizer,
        epoch=3,
        overrides=["num_classes=4"],
        extra={"note": "x"},
    )
    loaded = load_checkpoint(path)
    assert type(loaded.model) is type(model) and loaded.model.aux_names == ("side",)
    assert loaded.spec == model.spec and loaded.model.spec == model.spec
    assert same_state(loaded.model, model)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.model.eval()(x), model.eval()(x))
        expected, got = model.train()(x), loaded.model.train()(x)
    assert torch.equal(got.logits, expected.logits) and torch.equal(got.aux[0], expected.aux[0])
    assert (loaded.epoch, list(loaded.overrides), loaded.extra, loaded.source) == (
        3,
        ["num_classes=4"],
        {"note": "x"},
        None,
    )

    resumed = torch.optim.Adam(loaded.model.parameters(), lr=0.01)
    resumed.load_state_dict(loaded.optimizer_state)
    assert resumed.state_dict()["state"][0]["step"] == 2
    for key in ("exp_avg", "exp_avg_sq"):
        assert all(
            torch.equal(resumed.state_dict()["state"][i][key], optimizer.state_dict()["state"][i][key])
            for i in optimizer.state_dict()["state"]
        )


def test_the_checkpoint_needs_no_spec_file(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(SMALL)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nnum_classes: 5\n")
    spec = archbuilder.load_spec(child, overrides=["scale.width=0.5"])
    model = archbuilder.build(spec)
    save_checkpoint(tmp_path / "c.pt", model, overrides=["scale.width=0.5"])
    base.unlink()
    child.unlink()
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded.source == shown_path(child)  # never an absolute path (issue 27)
    assert loaded.spec.num_classes == 5 and loaded.spec.scale.width == 0.5
    assert same_state(loaded.model, model)


def test_variants_of_a_build_round_trip(tmp_path):
    no_aux, _ = trained(aux=False)
    save_checkpoint(tmp_path / "a.pt", no_aux)
    assert load_checkpoint(tmp_path / "a.pt").model.aux_names == ()

    backbone = archbuilder.build(AUX, features_only=True, out_names=["mix", "conv1"])
    save_checkpoint(tmp_path / "f.pt", nn.DataParallel(backbone))  # wrappers are unwrapped
    loaded = load_checkpoint(tmp_path / "f.pt").model
    assert loaded.feature_info == backbone.feature_info
    assert same_state(loaded, backbone)

    model, _ = trained()
    model.reset_classifier(7)
    save_checkpoint(tmp_path / "r.pt", model)
    assert load_checkpoint(tmp_path / "r.pt").model.eval()(torch.zeros(1, 3, 16, 16)).shape == (1, 7)


def test_loading_leaves_the_random_state_alone(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path / "c.pt", model)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(torch.rand(3), expected)


def test_save_is_atomic(tmp_path):
    model, _ = trained()
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1)
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, model, epoch=2, extra={"bad": lambda: None})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not an archbuilder checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")

    model, _ = trained()
    save_checkpoint(tmp_path / "c.pt", model)
    data = torch.load(tmp_path / "c.pt", weights_only=True)
    torch.save({**data, "spec": data["spec"].replace("out: 8", "out: 9", 1)}, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")
    torch.save({**data, "spec": "name: x\n"}, tmp_path / "badspec.pt")
    with pytest.raises(CheckpointError, match="spec in the checkpoint is invalid"):
        load_checkpoint(tmp_path / "badspec.pt")
    torch.save({**data, "archbuilder_checkpoint": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(tmp_path / "future.pt")
    # Loading runs no pickled code: objects beyond plain data are refused.
    torch.save({**data, "extra": {"obj": _Marker()}}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "code.pt")

    with pytest.raises(TypeError, match=r"made by archbuilder\.build"):
        save_checkpoint(tmp_path / "x.pt", nn.Linear(2, 2))


def test_size_limit_applies_when_loading(tmp_path, googlenet_path):
    save_checkpoint(tmp_path / "g.pt", archbuilder.build(googlenet_path, aux=False))
    with pytest.raises(archbuilder.SpecError, match="over the limit"):
        load_checkpoint(tmp_path / "g.pt", max_param_bytes=1 << 20)


class _Marker:
    pass
