"""Fuzz search-space files: shipped and docs spaces with hostile decisions and constraints.

    python bench/fuzz_space.py [--cases N] [--seed S]

Runs N hypothesis cases of tests/hostile_spaces.py under a 3 GiB address-space limit: each
must load as a space (then sample, estimate, probe, list and write a few candidates) or fail
with a SpecError whose every problem is one line, within 20 s. Prints the counts of cases,
loaded, refused and failures (tracebacks, hangs, slow cases, out of memory) with the first
few failures; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIME_LIMIT_S = 20


class _Hang(Exception):
    pass


def _alarm(*_):
    raise _Hang


def run(count: int, seed: int) -> int:
    """Run ``count`` cases; print the counts; the exit status."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    from tests.hostile_spaces import cases, check

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    outcomes: Counter = Counter()
    failures: list[str] = []
    start = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(cases())
    def one(case):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIME_LIMIT_S * 3)  # a hang, past what check() calls slow
        try:
            outcome = check(case, time_limit=TIME_LIMIT_S)
        except _Hang:
            outcome = "hang"
        except MemoryError:
            outcome = "out of memory"
        finally:
            signal.alarm(0)
        kind = {"valid": "loaded", "error": "refused"}.get(outcome, "failure")
        outcomes[kind] += 1
        if kind == "failure":
            failures.append(f"{outcome} ({case.note})")

    one()
    seconds = time.perf_counter() - start
    total = sum(outcomes.values())
    print(f"{total} cases in {seconds:.1f} s (seed {seed})")
    for kind, label in (("loaded", "loaded"), ("refused", "refused"), ("failure", "failures")):
        print(f"  {label:<8} {outcomes[kind]:>6}")
    for failure in failures[:10]:
        print(f"  - {failure[:300]}")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.exit(run(args.cases, args.seed))


if __name__ == "__main__":
    main()
