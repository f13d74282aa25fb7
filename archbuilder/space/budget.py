"""The budgets of search spaces: every count that grows with a space or an argument is bounded.

Each ceiling is far above every shipped space and documented use; a space or an argument
over one is refused with a message naming the limit, never worked on for hours. The work
each one bounds: options are parsed, labelled and probed one by one; a discrete range's
values are counted and its probes spread over them; draws, samples and tries are judged
(milliseconds each); a constraint's number is compared with counts of parameters and MACs.
"""

from __future__ import annotations

__all__ = [
    "MAX_AMOUNT",
    "MAX_DRAWS",
    "MAX_OPTIONS",
    "MAX_PROBES",
    "MAX_RANGE_NUMBER",
    "MAX_RANGE_VALUES",
    "MAX_SAMPLES",
    "MAX_TRIES",
    "PROBE_BUDGET",
    "check_count",
]

MAX_OPTIONS = 10_000  # options of one choice
MAX_RANGE_NUMBER = 10**18  # |low|, |high| and step of a range
MAX_RANGE_VALUES = 10**12  # values of a discrete range (an integer range, a float range with a step)
MAX_AMOUNT = 10**18  # a constraint (parameters, MACs, bytes): 1e18, an exa-anything
MAX_DRAWS = 100_000  # estimate(draws): a 95% interval narrower than ±0.4%
MAX_SAMPLES = 10_000  # sample(n): the files of one `archbuild sample`
MAX_TRIES = 1_000_000  # sample(max_tries): the default for n = MAX_SAMPLES is 501,000
MAX_PROBES = 100  # check_options(probes): tries per option
PROBE_BUDGET = 2_000  # candidates check_options judges in all (seconds): past it, each option is tried less


def check_count(name: str, value: int, limit: int) -> int:
    """``value`` when it is an integer from 0 to ``limit``; ValueError naming the limit otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}")
    if not 0 <= value <= limit:
        raise ValueError(f"{name} must be from 0 to {limit:,}, not {value:,}")
    return value
