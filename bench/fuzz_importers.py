"""Fuzzers for the importers: hostile models of each format, in bulk.

    python bench/fuzz_importers.py --onnx N [--seed S]
    python bench/fuzz_importers.py --prototxt N --caffemodel N [--seed S]

``--onnx`` runs N hypothesis cases of tests/onnx_graphs.py (small ONNX graphs of
Conv/Relu/MaxPool/Concat/Identity/Constant/Gemm/Flatten with random attributes, dims and
wiring) under a 6 GiB address-space limit: each must import as a spec or fail with an
ImportFailure naming the file, within 10 s. Prints the counts: cases, imported, refused,
failures (each kind of failure with its count).

``--prototxt`` mutates BVLC GoogLeNet's deploy file and ``--caffemodel`` a small net's
weights (tests/caffe_mutations.py), under the same limits and with the same counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIME_LIMIT_S = 10
ADDRESS_SPACE = 6 << 30  # torch is imported


def _cases(kind: str, folder: Path):
    """The hypothesis strategy of ``kind``'s cases and the check that judges one."""
    from hypothesis import strategies as st

    if kind == "onnx":
        from tests.onnx_graphs import check_onnx, onnx_models

        return st.tuples(onnx_models(), st.booleans()), lambda case: check_onnx(
            case[0], folder, partial=case[1], time_limit=TIME_LIMIT_S
        )
    from tests.caffe_mutations import caffemodel_bytes, check_caffemodel, check_prototxt, prototxt_texts

    if kind == "prototxt":
        return st.tuples(prototxt_texts(), st.booleans()), lambda case: check_prototxt(
            case[0], folder, partial=case[1], time_limit=TIME_LIMIT_S
        )
    return caffemodel_bytes(), lambda case: check_caffemodel(case, folder, time_limit=TIME_LIMIT_S)


def run(kind: str, count: int, seed: int) -> int:
    """Run ``count`` cases of ``kind`` ("onnx", "prototxt" or "caffemodel") under the address-
    space limit; print the counts; the exit status (1 when any failed)."""
    import resource

    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    outcomes: Counter = Counter()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        cases, check = _cases(kind, Path(name))

        @hypothesis_seed(seed)
        @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(cases)
        def one(case) -> None:
            try:
                outcome = check(case)
            except MemoryError:
                outcome = "over budget: MemoryError"
            outcomes[outcome] += 1

        one()
    return report(kind, outcomes, time.perf_counter() - start, seed)


def report(kind: str, outcomes: Counter, seconds: float, seed: int) -> int:
    """Print the counts of one fuzzer's run; 1 when any case failed, else 0."""
    failures = sum(n for k, n in outcomes.items() if k not in ("imported", "refused"))
    print(f"{kind}: {sum(outcomes.values())} cases in {seconds:.1f} s (seed {seed})")
    print(f"  imported {outcomes['imported']:>6}")
    print(f"  refused  {outcomes['refused']:>6}")
    print(f"  failures {failures:>6}")
    for outcome, n in outcomes.most_common():
        if outcome not in ("imported", "refused"):
            print(f"    {outcome[:120]:<60} {n:>6}")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=int, default=0, metavar="N", help="run N ONNX graph cases")
    parser.add_argument("--prototxt", type=int, default=0, metavar="N", help="run N mutated prototxt cases")
    parser.add_argument(
        "--caffemodel", type=int, default=0, metavar="N", help="run N mutated caffemodel cases"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    status = 0
    for kind in ("onnx", "prototxt", "caffemodel"):
        if getattr(args, kind):
            status |= run(kind, getattr(args, kind), args.seed)
    sys.exit(status)


if __name__ == "__main__":
    main()
