"""``load_space`` and :class:`SearchSpace`: a spec with decisions in it, and what it holds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from archbuilder.core.errors import SpecError
from archbuilder.space.check import OptionReport, empty_space_error, probe_options
from archbuilder.space.constraints import Constraints
from archbuilder.space.decisions import Decision
from archbuilder.space.evaluate import Candidate, evaluate
from archbuilder.space.parse import Parsed, parse_space
from archbuilder.space.resolve import Picks
from archbuilder.space.sampling import Estimate, Progress, Sample, estimate, sample
from archbuilder.space.study import space_identity
from archbuilder.space.suggest import suggest
from archbuilder.space.tree import DecisionTree, size_text
from archbuilder.spec.compose import Overrides, apply_overrides
from archbuilder.spec.load import load_data, read_spec_text
from archbuilder.spec.model import ArchSpec

__all__ = ["SearchSpace", "load_space"]

QUICK_DRAWS = 20  # draws at load before probing every option for why nothing is valid


class SearchSpace:
    """The candidates of a space file. Every candidate is an ordinary, validated ArchSpec."""

    def __init__(self, parsed: Parsed, sha256: str | None = None):
        self._parsed = parsed
        self._tree = DecisionTree(parsed.decisions)
        self.file = parsed.file
        """The space's file (None for inline text)."""
        self.sha256 = sha256
        """SHA-256 of the space file's bytes (of the text, when given inline)."""
        self.identity: dict[str, Any] = {}
        """What a shared study records of this space (``archbuilder.space.study.space_identity``):
        its name, the SHA-256 of its file and of each ``extends`` base, its overrides."""

    def __repr__(self) -> str:
        size = size_text(self.size) if isinstance(self.size, int) else "unbounded"
        return f"SearchSpace({self.file or '<text>'!r}, {len(self.decisions)} decisions, {size} combinations)"

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """Every decision, in document order; those inside a choice's option follow it."""
        return self._tree.decisions

    @property
    def constraints(self) -> Constraints:
        return self._parsed.constraints

    @property
    def size(self) -> int | float:
        """Raw combinations, valid or not (``math.inf`` with a continuous range)."""
        return self._tree.size

    def _judge(self, picks: Picks) -> Candidate:
        return evaluate(self._parsed, picks, self._tree.public(picks))

    def evaluate(self, choices: dict[str, Any]) -> Candidate:
        """The candidate of explicit ``choices`` (decision name → value, or label for a layer),
        valid or not; SpecError when the choices themselves don't fit the space."""
        return self._judge(self._tree.picks_for(choices))

    def candidate(self, choices: dict[str, Any]) -> ArchSpec:
        """The spec of explicit ``choices``; SpecError naming why when it is not valid."""
        found = self.evaluate(choices)
        if not found.valid:
            raise found.error()
        return found.spec

    def sample(
        self, n: int, *, seed: int = 0, max_tries: int | None = None, progress: Progress | None = None
    ) -> Sample:
        """Up to ``n`` distinct valid candidates, drawn uniformly over the raw combinations with
        ``seed``; ``.stats`` says how many were rejected and why. Fewer come back only when
        ``max_tries`` (default ``50 n + 1000``) ran out or the space holds no more."""
        return sample(self._tree, self._judge, n, seed=seed, max_tries=max_tries, progress=progress)

    def enumerate(self, *, include_invalid: bool = False) -> Iterator[Candidate]:
        """Every valid candidate (every candidate, with ``include_invalid``), lazily, in
        combination order. SpecError at once for a continuous range (it has no list)."""
        self._tree.check_listable()
        return self._enumerate(include_invalid)

    def _enumerate(self, include_invalid: bool) -> Iterator[Candidate]:
        for picks in self._tree.combinations():
            candidate = self._judge(picks)
            if include_invalid or candidate.valid:
                yield candidate

    def estimate(self, draws: int = 200, *, seed: int = 0, progress: Progress | None = None) -> Estimate:
        """The valid fraction, from ``draws`` uniform random combinations."""
        return estimate(self._tree, self._judge, draws, seed=seed, progress=progress)

    def check_options(self, *, probes: int = 3, seed: int = 0) -> list[OptionReport]:
        """For each option (a few values of each range): is it in some valid candidate, and
        if none was found in ``probes`` tries, the first problem met."""
        return probe_options(self._tree, self._judge, probes=probes, seed=seed)

    def suggest(self, trial: Any) -> ArchSpec:
        """The spec an Optuna trial picks (``suggest_categorical`` / ``suggest_int`` /
        ``suggest_float`` per active decision); ``optuna.TrialPruned`` when it is invalid.
        Needs optuna (``pip install 'archbuilder[search]'``; else MissingExtra)."""
        return suggest(self._tree, self._judge, trial)

    def assert_not_empty(self) -> None:
        """SpecError, saying why each option failed, when no candidate is valid."""
        if self.sample(1, seed=0, max_tries=QUICK_DRAWS):
            return
        reports = self.check_options()
        if not any(report.valid for report in reports):
            raise empty_space_error(reports, self.file, QUICK_DRAWS)


def load_space(
    path_or_text: str | Path, *, overrides: Overrides | None = None, check: bool = True
) -> SearchSpace:
    """Read a space: a spec (file or YAML text, ``extends`` followed) whose values may be
    decisions, with optional ``constraints``. SpecError lists every problem, located; with
    ``check``, a space with no valid candidate is one."""
    text, source_file = read_spec_text(path_or_text)
    data, source, problems = load_data(path_or_text)
    if overrides:
        data, source = apply_overrides(data, source, overrides, problems)
    parsed, found = parse_space(data, source)
    problems += found
    if problems:
        raise SpecError(problems)
    space = SearchSpace(parsed, hashlib.sha256(text.encode()).hexdigest())
    space.identity = space_identity(text, source_file, data.get("name"), overrides)
    if check:
        space.assert_not_empty()
    return space
