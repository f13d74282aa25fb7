"""``load_spec``: text or file in, a validated and shape-checked ArchSpec out."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from archbuilder.errors import Problem, SpecError
from archbuilder.gcpause import gc_paused
from archbuilder.spec.compose import Overrides, apply_overrides, base_path, merge
from archbuilder.spec.expand import expand_templates, relocate
from archbuilder.spec.model import ArchSpec
from archbuilder.spec.shipped import missing_message, resolve_spec_path, shipped_path
from archbuilder.spec.source import Source, parse_yaml
from archbuilder.spec.validate import problems_from_validation

__all__ = ["load_spec", "read_spec_text"]

MAX_SPEC_BYTES = 4 << 20


def read_spec_text(path_or_text: str | Path) -> tuple[str, str | None]:
    """The YAML text and its file name (None for inline text).

    A ``Path``, or a string naming an existing file, is read from disk; a bare name that is
    no file is a shipped spec (``googlenet``); a string with a newline, or one starting with
    ``{``, is YAML text itself.
    """
    if isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text.lstrip().startswith("{")):
        return path_or_text, None
    path = resolve_spec_path(path_or_text)
    file = str(path)
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError([Problem((), f"file is larger than {MAX_SPEC_BYTES >> 20} MiB", file)])
        raw = path.read_bytes()
    except FileNotFoundError:
        shipped_path(str(path_or_text))  # raises, suggesting a shipped spec's name
        raise
    except IsADirectoryError:
        raise SpecError([Problem((), "is a directory, not a spec file", file)]) from None
    except OSError as exc:
        raise SpecError([Problem((), f"cannot read: {exc.strerror}", file)]) from None
    try:
        return raw.decode("utf-8"), file
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text (byte {exc.start}); a spec is a YAML text file"
        raise SpecError([Problem((), message, file, line, column)]) from None


@gc_paused
def load_spec(
    path_or_text: str | Path, *, overrides: Overrides | None = None, check_shapes: bool = True
) -> ArchSpec:
    """Load, validate and (by default) shape-check a spec; raise SpecError listing every problem.

    ``extends`` chains are followed; ``overrides`` (``["num_classes=10"]`` or
    ``{"blocks.3a.ch1x1": 32}``) are applied last, with the merge rules of ``extends``.
    """
    problems: list[Problem] = []  # overrides and extends patches that name nothing
    data, source = _load_data(path_or_text, (), problems)
    if overrides:
        data, source = apply_overrides(data, source, overrides, problems)
    data, source, expansion_problems, origins = expand_templates(data, source)
    problems += expansion_problems
    try:
        spec = ArchSpec.model_validate(data, context={"templates_expanded": True})
    except ValidationError as exc:
        found = relocate(problems_from_validation(exc, data, source), origins)
        raise SpecError([*problems, *found]) from None
    if problems:
        raise SpecError(problems)
    spec._source = source
    if check_shapes:
        from archbuilder.ir.lower import lower

        try:
            lower(spec)  # raises SpecError naming the block whose shapes don't work
        except SpecError as exc:
            raise SpecError(relocate(list(exc.problems), origins)) from None
    return spec


def _load_data(
    path_or_text: str | Path, chain: tuple[Path, ...], problems: list[Problem]
) -> tuple[dict, Source]:
    """Parsed spec data with every ``extends`` merged in, and where each key came from."""
    text, file = read_spec_text(path_or_text)
    data, source = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError([source.problem((), "a spec is a mapping (name:, input:, blocks:, ...)")])
    if "extends" not in data:
        return data, source
    location = source.positions[("extends",)]
    base = base_path(data["extends"], file, location)
    here = Path(file).resolve() if file else None
    links = [*chain, *([here] if here else [])]
    if base.resolve() in links:
        cycle = " → ".join(_shown(path) for path in [*links, base.resolve()])
        raise SpecError([Problem(("extends",), f"extends cycle: {cycle}", *location)])
    if not base.is_file():
        message = f"extends '{data['extends']}': {missing_message(data['extends'])} ({base})"
        raise SpecError([Problem(("extends",), message, *location)])
    base_data, base_source = _load_data(base, tuple(links), problems)
    child = {key: value for key, value in data.items() if key != "extends"}
    positions = {path: loc for path, loc in source.positions.items() if path[:1] != ("extends",)}
    return merge(base_data, base_source, child, Source(file, positions), problems)


def _shown(path: Path) -> str:
    """A path as short as it can be shown: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
