"""gc_paused: collection off inside, restored after, whatever happens."""

from __future__ import annotations

import gc

import pytest

from archbuilder.core.gcpause import gc_paused


@gc_paused
def state(fail: bool = False) -> bool:
    if fail:
        raise ValueError("boom")
    return gc.isenabled()


def test_collection_is_off_inside_and_on_after():
    assert gc.isenabled()
    assert state() is False
    assert gc.isenabled()


def test_collection_comes_back_after_an_error():
    with pytest.raises(ValueError, match="boom"):
        state(fail=True)
    assert gc.isenabled()


def test_a_caller_who_turned_collection_off_keeps_it_off():
    gc.disable()
    try:
        assert state() is False
        assert not gc.isenabled()
    finally:
        gc.enable()
