"""Pause Python's cyclic garbage collector while a large structure is built.

Loading a spec and lowering it allocate many objects and free few; each automatic collection
walks them all again, which makes a 10,000-block spec cost up to twice its linear share.
Nothing built there needs collecting before the function returns, so collection waits until
then. The pause is used only where bench/gc_pause.py shows that it pays (``load_spec`` and
``lower``: 2.1× and 1.3× at 10,000 blocks, bench/results/xeon2-gc-pause.txt); summarizing
and the search-space sampler gained nothing from it and run with the collector on.

The switch is process-wide (CPython has one collector): other threads' collections wait too
while a paused function runs. A pause inside another is a no-op, and the collector is back
on when the outermost one returns, even on errors.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["gc_paused"]

P = ParamSpec("P")
R = TypeVar("R")


def gc_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with automatic garbage collection off (restored after, even on errors)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper
