"""Untrusted search spaces: whatever a space file holds, loading it gives a space or a
SpecError, and a loaded space samples, estimates, probes and lists in seconds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .hostile_spaces import Case, cases, check


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_space_files_load_or_fail_cleanly(case: Case):
    """Shipped and docs spaces with hostile decisions (bench/fuzz_space.py runs more)."""
    assert check(case, time_limit=20) in ("valid", "error"), case.note
