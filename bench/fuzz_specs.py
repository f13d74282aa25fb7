"""Fuzzers for the spec loader: text mutations of every shipped spec, and hostile structure.

    python bench/fuzz_specs.py [--mutants N] [--seed S]
    python bench/fuzz_specs.py --structural N [--seed S]

Each text mutant must load as a valid spec or fail with a SpecError whose every problem
names a line; anything else (another exception, or over 10 s) is counted as a failure.
``--structural`` runs N hypothesis cases of tests/hostile_specs.py (nested repeats,
templates, aliases and cycles, scale.depth, --set values) under a 3 GiB address-space limit:
each must end in a spec or a SpecError within 10 s, and the whole run must stay under 1 GiB
of resident memory.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archbuilder  # noqa: E402
from archbuilder.core.errors import SpecError  # noqa: E402
from tests.mutate import mutants  # noqa: E402

TIME_LIMIT_S = 10


class _Hang(Exception):
    pass


def _alarm(*_):
    raise _Hang


def classify(path: Path) -> str:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        archbuilder.summarize(archbuilder.load_spec(path))
        return "valid"
    except SpecError as exc:
        return (
            "error naming a line" if all(p.line is not None for p in exc.problems) else "error without a line"
        )
    except _Hang:
        return "hang"
    except Exception as exc:
        return f"traceback: {type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)


def run(count: int, seed: int) -> tuple[Counter, Counter, float]:
    outcomes: Counter = Counter()
    operators: Counter = Counter()
    start = time.perf_counter()
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant.yaml"
        per_spec = max(1, count // len(specs))
        for index, spec in enumerate(specs):
            for operator, data in mutants(spec.read_text(), per_spec, seed=seed + index):
                path.write_bytes(data)
                outcome = classify(path)
                outcomes[outcome] += 1
                operators[operator] += 1
    return outcomes, operators, time.perf_counter() - start


def structural(count: int, seed: int) -> int:
    """Run ``count`` hostile structural cases; print the counts; the exit status."""
    import resource

    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    from tests.hostile_specs import cases, check

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    outcomes: Counter = Counter()
    start = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(cases())
    def one(case):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIME_LIMIT_S)
        try:
            outcome = check(case, time_limit=TIME_LIMIT_S)
        except _Hang:
            outcome = "hang"
        except MemoryError:
            outcome = "over budget: MemoryError"
        finally:
            signal.alarm(0)
        outcomes[outcome.split(":")[0] if outcome.startswith("slow") else outcome] += 1

    one()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.perf_counter() - start
    print(
        f"{sum(outcomes.values())} structural cases in {seconds:.1f} s (seed {seed}), peak RSS {peak_mib:.0f} MiB"
    )
    for outcome, n in outcomes.most_common():
        print(f"  {outcome[:100]:<24} {n:>6}")
    bad = sum(n for k, n in outcomes.items() if k not in ("valid", "error"))
    return 1 if bad or peak_mib > 1024 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=5000)
    parser.add_argument(
        "--structural", type=int, default=0, metavar="N", help="run N structural cases instead"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.structural:
        sys.exit(structural(args.structural, args.seed))
    outcomes, operators, seconds = run(args.mutants, args.seed)
    total = sum(outcomes.values())
    print(
        f"{total} mutants of {len(list((ROOT / 'specs').glob('*.yaml')))} specs in {seconds:.1f} s (seed {args.seed})"
    )
    for outcome, n in outcomes.most_common():
        print(f"  {outcome:<24} {n:>6}")
    print("operators: " + ", ".join(f"{name} {n}" for name, n in sorted(operators.items())))
    failures = {k: v for k, v in outcomes.items() if k.startswith(("traceback", "hang", "error without"))}
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
