"""One build of the served page: the specs loaded as ``validate`` loads them, then the page model.

Runs in the worker process (:mod:`.worker`); everything it returns is plain data. A spec that
does not validate gives its problems, each located and with the line it names, never a
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archbuilder.analysis.overlay import overlay_for, read_profile
from archbuilder.core.errors import Problem, SpecError, format_path
from archbuilder.core.files import read_regular, shown_path
from archbuilder.ir import load_lowered
from archbuilder.render.compare import compare_marks
from archbuilder.render.page import page_model
from archbuilder.serve.chain import extends_chain
from archbuilder.spec.load import MAX_SPEC_BYTES

__all__ = ["BuildRequest", "BuildResult", "build_page", "problem_data"]

# What `archbuild validate` reports as a spec's problem rather than a failure of the program.
SPEC_FAILURES = (SpecError, ValueError, TypeError, OSError, RecursionError, MemoryError)


@dataclass(frozen=True)
class BuildRequest:
    """What to build: SPEC, or with ``compare`` the OTHER spec marked against it (as ``render
    SPEC --compare OTHER`` draws), loaded with the command line's options; ``color_by`` a
    metric to colour the page by (``latency`` from the profile at ``overlay``)."""

    spec: str
    compare: str | None = None
    overrides: tuple[str, ...] = ()
    max_ops: int | None = None
    allowed_roots: tuple[str, ...] = ()
    color_by: str | None = None
    overlay: str | None = None


@dataclass
class BuildResult:
    """The page model (None when a spec does not validate), the problems, the files read."""

    model: dict[str, Any] | None
    problems: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def build_page(request: BuildRequest) -> BuildResult:
    """Load the spec(s) of ``request`` and describe the page, or say what is wrong."""
    specs = [request.spec, *([request.compare] if request.compare else [])]
    files = [str(path) for spec in specs for path in extends_chain(spec)]
    loaded = []
    problems: list[dict[str, Any]] = []
    for spec in specs:
        try:
            loaded.append(_load(request, spec))
        except SPEC_FAILURES as exc:
            found = exc.problems if isinstance(exc, SpecError) else [Problem((), _said(exc), spec)]
            problems += [problem_data(problem) for problem in found]
    if problems:
        return BuildResult(None, problems, files)
    drawn, ir = loaded[-1]
    overlay = None
    if request.color_by:
        try:  # a profile of the spec as it was: an edit makes it another spec's
            profile = read_profile(request.overlay, drawn, ir) if request.overlay else None
            overlay = overlay_for(ir, request.color_by, profile)
        except ValueError as exc:
            return BuildResult(None, [problem_data(Problem((), str(exc), request.overlay))], files)
    marks = compare_marks(loaded[0][0], drawn) if request.compare else None
    return BuildResult(page_model(ir, drawn, marks, overlay), [], files)


def _load(request: BuildRequest, spec: str):
    options: dict[str, Any] = {"overrides": list(request.overrides), "allowed_roots": request.allowed_roots}
    if request.max_ops is not None:
        options["max_ops"] = request.max_ops
    return load_lowered(spec, **options)


def _said(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory; the spec asks for more than this machine has"
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    return str(exc)[:2000]


def problem_data(problem: Problem) -> dict[str, Any]:
    """A problem as the page shows it: where (the file as the user named it), the key, the
    message (with its fix), and the text of the line it names."""
    data: dict[str, Any] = {
        "file": shown_path(problem.file) if problem.file else "<spec>",
        "line": problem.line,
        "column": problem.column,
        "key": format_path(problem.path),
        "message": problem.message,
    }
    if problem.file and problem.line:
        data["text"] = _line(problem.file, problem.line)
    return data


def _line(file: str, number: int) -> str | None:
    try:
        lines = read_regular(Path(file), max_bytes=MAX_SPEC_BYTES).decode().splitlines()
    except (OSError, ValueError):
        return None
    return lines[number - 1][:500] if 0 < number <= len(lines) else None
