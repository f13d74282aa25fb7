"""The specs that ship with archbuilder, addressed by name (``googlenet``, ``inception-v3``).

They are the repository's ``specs/`` folder, installed as package data (``archbuilder/specs``
links to it in a checkout, so there is one copy). A reference that names an existing file is
that file; a bare name (no folder, ``.yaml`` optional) that names no file is a shipped spec.
"""

from __future__ import annotations

from pathlib import Path

from archbuilder.core.errors import Problem, SpecError, did_you_mean
from archbuilder.core.files import SHIPPED_SPECS, shipped_name

__all__ = [
    "SHIPPED_SPECS",
    "missing_message",
    "resolve_spec_path",
    "shipped_name",
    "shipped_names",
    "shipped_path",
]

_SUFFIX = ".yaml"


def shipped_names() -> list[str]:
    """Names of the shipped specs, sorted."""
    return sorted(path.stem for path in SHIPPED_SPECS.glob(f"*{_SUFFIX}"))


def _bare_name(reference: str) -> str | None:
    """The shipped-spec name a reference could mean: no folder part, ``.yaml`` optional."""
    if not reference or "/" in reference or "\\" in reference or reference.startswith("."):
        return None
    return reference.removesuffix(_SUFFIX)


def shipped_path(name: str) -> Path:
    """The file of the shipped spec ``name``; SpecError with a suggestion for an unknown name."""
    bare = _bare_name(name)
    if bare is not None and bare in shipped_names():
        return SHIPPED_SPECS / f"{bare}{_SUFFIX}"
    raise SpecError([Problem((), missing_message(name), name)])


def missing_message(reference: str) -> str:
    """What to say of a reference that names neither a file nor a shipped spec."""
    bare = _bare_name(reference)
    if bare is None:
        return "no such file"
    hint = did_you_mean(bare, shipped_names())
    return f"no such file, and no shipped spec of that name{hint}; `archbuild list` shows the shipped specs"


def resolve_spec_path(reference: str | Path, *, relative_to: Path | None = None) -> Path:
    """The file a spec reference names: an existing file wins, then a shipped spec's name.

    ``relative_to`` is the folder a relative path is read from (the including spec's folder
    for ``extends``; the working folder otherwise). A reference that is neither a file nor a
    shipped name comes back unchanged, for the reader to report as missing.
    """
    path = Path(reference)
    candidate = relative_to / path if relative_to is not None else path
    if candidate.exists():
        return candidate
    bare = _bare_name(str(reference))
    if bare is not None and bare in shipped_names():
        return SHIPPED_SPECS / f"{bare}{_SUFFIX}"
    return candidate
