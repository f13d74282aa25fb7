"""Every spec in specs/ validates, summarizes, builds, and runs forward in train and eval mode."""

from __future__ import annotations

import pytest
import torch

import archbuilder

from .conftest import SPECS, shipped_spec_params

SHIPPED = sorted(SPECS.glob("*.yaml"))


def test_specs_are_shipped():
    assert SHIPPED, "specs/ holds no spec"


@pytest.mark.parametrize("path", shipped_spec_params())
def test_shipped_spec_builds_and_runs(path):
    spec = archbuilder.load_spec(path)
    summary = archbuilder.summarize(spec)
    model = archbuilder.build(spec)
    assert sum(p.numel() for p in model.parameters()) == summary.params
    x = torch.randn(2, spec.input.channels, spec.input.height, spec.input.width)
    with torch.no_grad():
        logits = model.eval()(x)
        assert logits.shape == (2, spec.num_classes)
        outputs = model.train()(x)
    if spec.aux_heads:
        assert outputs.logits.shape == (2, spec.num_classes)
        assert len(outputs.aux) == len(spec.aux_heads)
