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
