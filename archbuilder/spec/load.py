"""Reading a spec: text or file in, the ``extends`` chain merged, overrides applied, templates
expanded and every model validated; a :class:`ParsedSpec` out.

Shapes are not checked here: that lowers the spec to the IR, one layer up, in
:mod:`archbuilder.ir.load`, whose ``load_spec`` is the front door (``archbuilder.load_spec``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from archbuilder.core.errors import Problem, SpecError
from archbuilder.core.files import UnreadableFile, read_regular
from archbuilder.spec.budget import DEFAULT_MAX_OPS, check_budget, check_max_ops
from archbuilder.spec.compose import Overrides, apply_overrides, base_path, merge
from archbuilder.spec.expand import Origins, expand_templates, relocate
from archbuilder.spec.model import ArchSpec
from archbuilder.spec.shipped import SHIPPED_SPECS, missing_message, resolve_spec_path
from archbuilder.spec.source import Location, Source, parse_yaml
from archbuilder.spec.validate import problems_from_validation

__all__ = [
    "DEFAULT_MAX_OPS",
    "MAX_SPEC_BYTES",
    "ParsedSpec",
    "default_roots",
    "load_data",
    "parse_spec",
    "parse_spec_text",
    "read_spec_text",
]

MAX_SPEC_BYTES = 4 << 20
MAX_EXTENDS_DEPTH = 32  # files in one extends chain
_MAX_PATH = 4096  # a longer one-line string is text, not a path


def default_roots(top_level: str | Path | None) -> list[Path]:
    """The folders ``extends`` may read without an allowance: the top-level spec's folder
    (the working folder for a spec given as text) and the shipped specs."""
    folder = Path(top_level).resolve().parent if top_level is not None else Path.cwd().resolve()
    return [folder, SHIPPED_SPECS.resolve()]


def read_spec_text(path_or_text: str | Path | bytes) -> tuple[str, str | None]:
    """The YAML text and its file name (None for inline text).

    A ``Path``, or a string naming a file, is read from disk (a regular file of at most
    4 MiB); a bare name that is no file is a shipped spec (``googlenet``); a string with a
    newline, one starting with ``{``, an empty one, and ``bytes`` are YAML text themselves.
    """
    if isinstance(path_or_text, bytes):
        return _decode(path_or_text, None), None
    if isinstance(path_or_text, str) and _is_text(path_or_text):
        return _check_text(path_or_text), None
    if not isinstance(path_or_text, (str, os.PathLike)):
        kind = type(path_or_text).__name__
        raise TypeError(f"load_spec takes a file path (str or Path) or YAML text, not {kind}")
    file = os.fspath(resolve_spec_path(path_or_text))
    try:
        raw = read_regular(file, max_bytes=MAX_SPEC_BYTES)
    except UnreadableFile as exc:
        reason = "is a directory, not a spec file" if exc.reason.startswith("is a directory") else exc.reason
        if exc.reason == "no such file":  # perhaps a shipped spec's name, misspelt
            reason = missing_message(os.fspath(path_or_text))
        raise SpecError([Problem((), reason, exc.path)]) from None
    return _decode(raw, file), file


def _is_text(text: str) -> bool:
    return not text.strip() or "\n" in text or text.lstrip().startswith("{") or len(text) > _MAX_PATH


def _check_text(text: str) -> str:
    if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError([Problem((), f"the spec text is larger than {MAX_SPEC_BYTES >> 20} MiB", None)])
    return text


def _decode(raw: bytes, file: str | None) -> str:
    if file is None and len(raw) > MAX_SPEC_BYTES:
        raise SpecError([Problem((), f"the spec text is larger than {MAX_SPEC_BYTES >> 20} MiB", None)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text (byte {exc.start}); a spec is a YAML text file"
        raise SpecError([Problem((), message, file, line, column)]) from None


@dataclass(frozen=True)
class ParsedSpec:
    """A validated spec, and where its expanded templates' parts came from."""

    spec: ArchSpec
    origins: Origins

    def relocate(self, problems: Iterable[Problem]) -> list[Problem]:
        """``problems`` found in the expanded spec, re-addressed to the template lines they
        came from (a problem every use of a template shares is reported once)."""
        return relocate(list(problems), self.origins)


def parse_spec(
    path_or_text: str | Path | bytes,
    *,
    overrides: Overrides | None = None,
    max_ops: int = DEFAULT_MAX_OPS,
    allowed_roots: Iterable[str | Path] | None = None,
) -> ParsedSpec:
    """Read and validate a spec (shapes unchecked); SpecError listing every problem.

    ``extends`` chains are followed, reading only files under the top-level spec's folder
    (:func:`default_roots`) and under ``allowed_roots``; ``overrides`` (``["num_classes=10"]``
    or ``{"blocks.3a.ch1x1": 32}``) are applied last, with the merge rules of ``extends``. A
    spec expanding to more than ``max_ops`` ops (repeats, templates and ``scale.depth``
    counted) is refused before anything is expanded.
    """
    text, file = read_spec_text(path_or_text)
    return _parse(text, file, overrides, max_ops, allowed_roots)


def parse_spec_text(
    text: str,
    *,
    overrides: Overrides | None = None,
    max_ops: int = DEFAULT_MAX_OPS,
    allowed_roots: Iterable[str | Path] | None = None,
) -> ParsedSpec:
    """:func:`parse_spec` for YAML text that is never taken as a path (a one-line spec, a
    checkpoint's spec); ``extends`` reads only under ``allowed_roots``, if any."""
    if not isinstance(text, str):
        raise TypeError(f"load_spec_text takes YAML text (str), not {type(text).__name__}")
    return _parse(_check_text(text), None, overrides, max_ops, allowed_roots or [], own=False)


def load_data(
    path_or_text: str | Path | bytes, *, allowed_roots: Iterable[str | Path] = ()
) -> tuple[dict, Source, list[Problem]]:
    """A spec's raw data with its ``extends`` chain merged in (read as :func:`load_spec` reads
    it), where each key came from, and the problems of the merge; nothing is validated yet.
    Search spaces start here, resolving their decisions before the spec is checked."""
    text, file = read_spec_text(path_or_text)
    roots = default_roots(file) + [Path(root).resolve() for root in allowed_roots]
    problems: list[Problem] = []
    data, source = _load_data(text, file, (), problems, roots)
    return data, source, problems


def _parse(
    text: str,
    file: str | None,
    overrides: Overrides | None,
    max_ops: int,
    allowed: Iterable[str | Path] | None,
    *,
    own: bool = True,
) -> ParsedSpec:
    check_max_ops(max_ops)
    extra = [] if allowed is None else list(allowed)
    if isinstance(allowed, (str, bytes, os.PathLike)) or not all(
        isinstance(r, (str, os.PathLike)) for r in extra
    ):
        raise TypeError("allowed_roots is a list of folders (str or Path)")
    roots = (default_roots(file) if own else []) + [Path(root).resolve() for root in extra]
    problems: list[Problem] = []  # overrides and extends patches that name nothing
    data, source = _load_data(text, file, (), problems, roots)
    if overrides:
        data, source = apply_overrides(data, source, overrides, problems)
    data, source, expansion_problems, origins = expand_templates(data, source)
    problems += expansion_problems
    check_budget(data, source, max_ops)
    try:
        spec = ArchSpec.from_data(data, source, templates_expanded=True)
    except ValidationError as exc:
        found = relocate(problems_from_validation(exc, data, source), origins)
        raise SpecError([*problems, *found]) from None
    if problems:
        raise SpecError(problems)
    return ParsedSpec(spec, origins)


def _load_data(
    text: str, file: str | None, chain: tuple[Path, ...], problems: list[Problem], roots: list[Path]
) -> tuple[dict, Source]:
    """Parsed spec data with every ``extends`` merged in, and where each key came from."""
    data, source = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError([source.problem((), "a spec is a mapping (name:, input:, blocks:, ...)")])
    if "extends" not in data:
        return data, source
    location = source.positions[("extends",)]
    base = base_path(data["extends"], file, location)
    here = Path(file).resolve() if file else None
    links = [*chain, *([here] if here else [])]
    resolved = _resolve(base, location, data["extends"])
    if resolved in links:
        cycle = " → ".join(_shown(path) for path in [*links, resolved])
        raise SpecError([Problem(("extends",), f"extends cycle: {cycle}", *location)])
    if len(links) >= MAX_EXTENDS_DEPTH:
        message = f"extends chain of more than {MAX_EXTENDS_DEPTH} files"
        raise SpecError([Problem(("extends",), message, *location)])
    _check_allowed(resolved, base, roots, location, data["extends"])
    base_text = _read_base(base, location, data["extends"])
    base_data, base_source = _load_data(base_text, str(base), tuple(links), problems, roots)
    child = {key: value for key, value in data.items() if key != "extends"}
    positions = {path: loc for path, loc in source.positions.items() if path[:1] != ("extends",)}
    return merge(base_data, base_source, child, Source(file, positions), problems)


def _fail(message: str, location: Location) -> SpecError:
    return SpecError([Problem(("extends",), message, *location)])


def _resolve(base: Path, location: Location, named: str) -> Path:
    try:
        return base.resolve()
    except (RuntimeError, OSError):
        raise _fail(f"extends '{named}': a symbolic link loop ({base})", location) from None


def _check_allowed(resolved: Path, base: Path, roots: list[Path], location: Location, named: str) -> None:
    if any(resolved == root or root in resolved.parents for root in roots):
        return
    where = ", ".join(_shown(root) for root in roots) or "none: the spec is text"
    message = (
        f"extends '{named}': {base} is outside the folders a spec may read ({where}); "
        "allow its folder with --allow-path DIR (load_spec(..., allowed_roots=[DIR]))"
    )
    raise _fail(message, location)


def _read_base(base: Path, location: Location, named: str) -> str:
    """The text of an ``extends`` target, refused unless it is a spec (never echoing it)."""
    try:
        raw = read_regular(base, max_bytes=MAX_SPEC_BYTES)
    except UnreadableFile as exc:
        reason = missing_message(named) if exc.reason == "no such file" else exc.reason
        raise _fail(f"extends '{named}': {reason} ({base})", location) from None
    try:
        text = raw.decode("utf-8")
        data, _ = parse_yaml(text, str(base))
    except UnicodeDecodeError:
        data = None
    except SpecError:
        if base.suffix.lower() in (".yaml", ".yml"):
            raise  # a spec file with a mistake: show where
        data = None  # some other file: say so, without quoting it
    known = set(ArchSpec.model_fields) | {"extends"}
    if not isinstance(data, dict) or not any(key in known for key in data):
        raise _fail(f"extends '{named}': {base} is not an archbuilder spec", location)
    return text


def _shown(path: Path) -> str:
    """A path as short as it can be shown: relative to the working folder when inside it; the
    shipped specs' folder by that name (where the package is installed is nobody's business)."""
    if path == SHIPPED_SPECS.resolve():
        return "the shipped specs"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
