"""archbuilder.ir.load: a spec loaded by path is lowered once, for its check and its use."""

from __future__ import annotations

import archbuilder.ir.load as loading
from archbuilder.ir import IR, as_ir, load_lowered, load_spec, lower

from .conftest import GOOGLENET


def test_as_ir_of_a_path_lowers_the_spec_once(monkeypatch):
    calls = []
    real = loading.lower
    monkeypatch.setattr(loading, "lower", lambda spec: calls.append(spec) or real(spec))
    ir = as_ir(GOOGLENET)
    assert isinstance(ir, IR) and len(calls) == 1
    assert ir.total() == as_ir(load_spec(GOOGLENET)).total()  # the same IR as spec then lower


def test_load_lowered_is_load_spec_and_its_ir():
    spec, ir = load_lowered(GOOGLENET)
    assert spec == load_spec(GOOGLENET)
    assert ir.total() == lower(spec).total()
