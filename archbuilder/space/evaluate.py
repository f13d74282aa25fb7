"""Judge one candidate: validate it as a spec, infer its shapes, count it against the budgets.

The steps are ``load_spec``'s (templates, pydantic validation, lowering) run on data the
picks produced, then :func:`archbuilder.summarize` and, when a budget needs it,
:func:`archbuilder.ir.memory.activation_bytes`. Nothing is built and torch is not imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from archbuilder.analysis.summary import summarize
from archbuilder.core.errors import Problem, SpecError
from archbuilder.ir.lower import lower
from archbuilder.ir.memory import activation_bytes
from archbuilder.space.parse import Parsed
from archbuilder.space.resolve import Picks, fill
from archbuilder.spec.expand import expand_templates, relocate
from archbuilder.spec.model import ArchSpec
from archbuilder.spec.validate import problems_from_validation

__all__ = ["Candidate", "Stage", "evaluate"]

Stage = Literal["spec", "shapes", "constraints"]


@dataclass(frozen=True)
class Candidate:
    """One point of a space: its decisions and, when it is valid, its spec and counts.

    ``params`` counts every parameter (aux heads included), ``macs`` one inference pass.
    """

    choices: dict[str, Any]
    spec: ArchSpec | None = None
    params: int | None = None
    macs: int | None = None
    activation_bytes: int | None = None
    stage: Stage | None = None
    """Where an invalid candidate failed; None for a valid one."""
    problems: tuple[Problem, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return self.stage is None

    @property
    def reason(self) -> str:
        """The first problem, as ``file:line:col: key: message`` ('' for a valid candidate)."""
        return str(self.problems[0]) if self.problems else ""

    def error(self) -> SpecError:
        return SpecError(self.problems)


def evaluate(parsed: Parsed, picks: Picks, choices: dict[str, Any]) -> Candidate:
    """The candidate ``picks`` describes, valid or with the problems that rule it out."""
    data, source = fill(parsed, picks)
    data, source, problems, origins = expand_templates(data, source)
    if problems:
        return Candidate(choices, stage="spec", problems=tuple(problems))
    try:
        spec = ArchSpec.from_data(data, source, templates_expanded=True)
    except ValidationError as exc:
        found = relocate(problems_from_validation(exc, data, source), origins)
        return Candidate(choices, stage="spec", problems=tuple(found))
    try:
        ir = lower(spec)
    except SpecError as exc:
        return Candidate(choices, stage="shapes", problems=tuple(relocate(list(exc.problems), origins)))
    summary = summarize(ir)
    constraints = parsed.constraints
    memory = activation_bytes(ir, batch=1) if constraints.max_activation_bytes is not None else None
    counts = {"params": summary.params, "macs": summary.inference_macs, "activation_bytes": memory}
    violations = constraints.violations(counts)
    if violations:
        return Candidate(choices, spec, **counts, stage="constraints", problems=tuple(violations))
    return Candidate(choices, spec, **counts)
