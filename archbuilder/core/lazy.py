"""Packages whose public names load their modules on first use (PEP 562).

``import archbuilder`` stays fast: each name in a package's table is imported from its home
module the first time it is asked for, then kept in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["homes_by_name", "lazy_attributes"]


def homes_by_name(homes: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{module: names}`` turned round: each public name's home module."""
    return {name: module for module, names in homes.items() for name in names}


def lazy_attributes(
    package: str, home_of: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__``: a name in ``home_of`` is imported from its
    module and stored in ``namespace`` (the package's ``globals()``), so later look-ups skip it."""

    def __getattr__(name: str) -> Any:
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *home_of})

    return __getattr__, __dir__
