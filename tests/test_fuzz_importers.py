"""Untrusted models: whatever an importer is given, it returns a spec or raises ImportFailure, fast.

Each format has its own section; bench/fuzz_importers.py runs the same cases in bulk.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# ---- ONNX: graphs built with onnx.helper (tests/onnx_graphs.py) -------------------------------


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), partial=st.booleans())
def test_onnx_graphs_import_or_fail_cleanly(tmp_path, data, partial):
    """Random small graphs (Conv/Relu/MaxPool/Concat/Identity/Constant/Gemm/Flatten, random
    attributes, dims and wiring): a spec or an ImportFailure naming the file, within 10 s."""
    pytest.importorskip("onnx")
    from .onnx_graphs import check_onnx, onnx_models

    model = data.draw(onnx_models())
    assert check_onnx(model, tmp_path, partial=partial, time_limit=10) in ("imported", "refused")


# ---- Caffe: BVLC GoogLeNet's prototxt and a small net's caffemodel, mutated (tests/caffe_mutations.py)


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), partial=st.booleans())
def test_prototxt_imports_or_fails_cleanly(tmp_path, data, partial):
    """GoogLeNet's deploy file with layers dropped, duplicated or swapped, values replaced by
    hostile tokens, fields added, braces unbalanced, the text cut: a spec or an ImportFailure
    naming the file, within 10 s."""
    from .caffe_mutations import check_prototxt, prototxt_texts

    text = data.draw(prototxt_texts())
    assert check_prototxt(text, tmp_path, partial=partial, time_limit=10) in ("imported", "refused")


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_caffemodel_bytes_import_or_fail_cleanly(tmp_path, data):
    """A small net's caffemodel with bytes flipped, inserted, removed or duplicated, wire-format
    pieces spliced in (endless varints, huge lengths, unpacked values, groups), the file cut:
    a spec with weights or an ImportFailure naming a file, within 10 s."""
    from .caffe_mutations import caffemodel_bytes, check_caffemodel

    raw = data.draw(caffemodel_bytes())
    assert check_caffemodel(raw, tmp_path, time_limit=10) in ("imported", "refused")
