"""Random candidates of a space: distinct valid samples with their rejection statistics, and
an estimate of the fraction of the space that is valid."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from archbuilder.space.budget import MAX_DRAWS, MAX_SAMPLES, MAX_TRIES, check_count
from archbuilder.space.evaluate import Candidate
from archbuilder.space.resolve import Picks
from archbuilder.space.tree import DecisionTree
from archbuilder.spec.model import ArchSpec

__all__ = ["Estimate", "Sample", "SampleStats", "estimate", "sample"]

Judge = Callable[[Picks], Candidate]
Progress = Callable[[int, int], None]  # (valid found, draws so far)


@dataclass(frozen=True)
class SampleStats:
    """What a sample drew: ``tried`` draws, of which ``duplicates`` repeated an earlier one;
    ``rejected`` counts the invalid by where they failed (``spec``, ``shapes``, or the budget
    they broke, such as ``max_macs``)."""

    tried: int
    valid: int
    duplicates: int
    rejected: dict[str, int]
    first_reasons: dict[str, str]
    """The first problem met for each key of ``rejected``."""
    exhausted: bool
    """Every combination was drawn: the space holds no other valid candidate."""

    @property
    def evaluated(self) -> int:
        return self.tried - self.duplicates

    @property
    def rejection_rate(self) -> float:
        """Invalid candidates per distinct candidate judged."""
        return sum(self.rejected.values()) / self.evaluated if self.evaluated else 0.0


@dataclass(frozen=True)
class Sample(Sequence[Candidate]):
    """Distinct valid candidates, in the order they were drawn, and how they were found."""

    candidates: tuple[Candidate, ...]
    stats: SampleStats

    @property
    def specs(self) -> list[ArchSpec]:
        return [candidate.spec for candidate in self.candidates]

    def __len__(self) -> int:
        return len(self.candidates)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Candidate, ...]: ...
    def __getitem__(self, index):
        return self.candidates[index]

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.candidates)


def _key(candidate: Candidate) -> str:
    if candidate.stage != "constraints":
        return candidate.stage or ""
    return candidate.problems[0].path[-1]


def sample(
    tree: DecisionTree,
    judge: Judge,
    n: int,
    *,
    seed: int,
    max_tries: int | None = None,
    progress: Progress | None = None,
) -> Sample:
    """Up to ``n`` distinct valid candidates drawn with ``random.Random(seed)``; stops after
    ``max_tries`` draws (default ``50 n + 1000``) or when every combination has been drawn.
    ValueError when ``n`` or ``max_tries`` is over its budget (:mod:`archbuilder.space.budget`)."""
    check_count("n", n, MAX_SAMPLES)
    limit = check_count("max_tries", max_tries, MAX_TRIES) if max_tries is not None else 50 * n + 1000
    rng = random.Random(seed)
    seen: set[tuple] = set()
    found: list[Candidate] = []
    rejected: dict[str, int] = {}
    reasons: dict[str, str] = {}
    tried = duplicates = 0
    while len(found) < n and tried < limit and len(seen) < tree.size:
        picks = tree.draw(rng)
        tried += 1
        key = tuple(picks.values())  # the decisions taken follow from the earlier picks
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        candidate = judge(picks)
        if candidate.valid:
            found.append(candidate)
        else:
            kind = _key(candidate)
            rejected[kind] = rejected.get(kind, 0) + 1
            reasons.setdefault(kind, candidate.reason)
        if progress is not None:
            progress(len(found), tried)
    stats = SampleStats(tried, len(found), duplicates, rejected, reasons, len(seen) >= tree.size)
    return Sample(tuple(found), stats)


@dataclass(frozen=True)
class Estimate:
    """The valid fraction of a space, from ``draws`` uniform draws of which ``valid`` were."""

    valid: int
    draws: int

    @property
    def fraction(self) -> float:
        return self.valid / self.draws if self.draws else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson score interval of the fraction."""
        if not self.draws:
            return 0.0, 1.0
        z, n, p = 1.96, self.draws, self.fraction
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


def estimate(
    tree: DecisionTree, judge: Judge, draws: int, *, seed: int = 0, progress: Progress | None = None
) -> Estimate:
    """Judge ``draws`` random combinations (with replacement, each judged once)."""
    check_count("draws", draws, MAX_DRAWS)
    rng = random.Random(seed)
    verdicts: dict[tuple, bool] = {}
    valid = 0
    for draw in range(1, draws + 1):
        picks = tree.draw(rng)
        key = tuple(picks.values())
        if key not in verdicts:
            verdicts[key] = judge(picks).valid
        valid += verdicts[key]
        if progress is not None:
            progress(draw, draw)
    return Estimate(valid, draws)
