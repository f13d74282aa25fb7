"""``load_spec``: text or file in, a validated and shape-checked ArchSpec out.

Reading and validating is the spec layer's (:func:`archbuilder.spec.load.parse_spec`); the
shape check lowers the spec to the IR, so it lives here, one layer up, and reports the
block whose shapes don't work at the line it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from archbuilder.core.errors import SpecError
from archbuilder.core.gcpause import gc_paused
from archbuilder.ir.graph import IR
from archbuilder.ir.lower import lower
from archbuilder.spec.budget import DEFAULT_MAX_OPS
from archbuilder.spec.compose import Overrides
from archbuilder.spec.load import ParsedSpec, parse_spec, parse_spec_text
from archbuilder.spec.model import ArchSpec

__all__ = ["as_spec", "load_lowered", "load_spec", "load_spec_text"]


@gc_paused
def load_spec(
    path_or_text: str | Path | bytes,
    *,
    overrides: Overrides | None = None,
    check_shapes: bool = True,
    max_ops: int = DEFAULT_MAX_OPS,
    allowed_roots: Iterable[str | Path] | None = None,
) -> ArchSpec:
    """Load, validate and (by default) shape-check a spec; raise SpecError listing every problem.

    ``extends`` chains are followed, reading only files under the top-level spec's folder
    and the shipped specs, and under ``allowed_roots``; ``overrides`` (``["num_classes=10"]``
    or ``{"blocks.3a.ch1x1": 32}``) are applied last, with the merge rules of ``extends``. A
    spec expanding to more than ``max_ops`` ops (repeats, templates and ``scale.depth``
    counted) is refused before anything is expanded.
    """
    parsed = parse_spec(path_or_text, overrides=overrides, max_ops=max_ops, allowed_roots=allowed_roots)
    return _checked(parsed)[0] if check_shapes else parsed.spec


@gc_paused
def load_lowered(
    path_or_text: str | Path | bytes,
    *,
    overrides: Overrides | None = None,
    max_ops: int = DEFAULT_MAX_OPS,
    allowed_roots: Iterable[str | Path] | None = None,
) -> tuple[ArchSpec, IR]:
    """:func:`load_spec` and the IR its shape check lowered, for a caller that needs both
    (the spec is lowered once, not once to check and again to use)."""
    return _checked(
        parse_spec(path_or_text, overrides=overrides, max_ops=max_ops, allowed_roots=allowed_roots)
    )


def load_spec_text(
    text: str,
    *,
    overrides: Overrides | None = None,
    check_shapes: bool = True,
    max_ops: int = DEFAULT_MAX_OPS,
    allowed_roots: Iterable[str | Path] | None = None,
) -> ArchSpec:
    """:func:`load_spec` for YAML text that is never taken as a path (a one-line spec, a
    checkpoint's spec); ``extends`` reads only under ``allowed_roots``, if any."""
    parsed = parse_spec_text(text, overrides=overrides, max_ops=max_ops, allowed_roots=allowed_roots)
    return _checked(parsed)[0] if check_shapes else parsed.spec


def as_spec(spec: ArchSpec | str | Path) -> ArchSpec:
    """``spec`` itself when it is an :class:`ArchSpec`, else :func:`load_spec` of it (a path
    or YAML text): the one place the public functions that take either turn it into a spec."""
    return spec if isinstance(spec, ArchSpec) else load_spec(spec)


def _checked(parsed: ParsedSpec) -> tuple[ArchSpec, IR]:
    try:
        ir = lower(parsed.spec)  # raises SpecError naming the block whose shapes don't work
    except SpecError as exc:
        raise SpecError(parsed.relocate(exc.problems)) from None
    return parsed.spec, ir
