"""Does pausing the garbage collector pay? Each function archbuilder could run under
``gc_paused``, timed paused and with the collector on, turn about: a paused function against
itself unwrapped (``__wrapped__``), any other against itself wrapped in ``gc_paused``.

    python bench/gc_pause.py [--sizes 1000 10000] [--repeats 3] [--draws 200]

Each call is followed by ``gc.collect()`` inside the timing: the pause defers collection, it
does not remove it, so the fair total includes what is collected afterwards (what existed
before the timings, imports and inputs, is frozen out of those collections). The specs are
bench/scale.py's (a stem and N identical Inception blocks); the sampler runs on
specs/spaces/inception-digits.yaml. A ratio above 1 is the factor the pause saves.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Callable

from benchlib import ROOT, machine, median, print_repeats, table, time_interleaved
from scale import spec_text

import archbuilder
from archbuilder.analysis.summary import summarize
from archbuilder.core.gcpause import gc_paused
from archbuilder.ir.load import load_spec
from archbuilder.ir.lower import lower
from archbuilder.space.sampling import estimate, sample

SPACE = ROOT / "specs" / "spaces" / "inception-digits.yaml"


def both(function: Callable) -> tuple[Callable, Callable]:
    """(paused, collector on) versions of ``function``, whichever of them it ships as."""
    if hasattr(function, "__wrapped__"):
        return function, function.__wrapped__
    return gc_paused(function), function


def collected(call: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        call()
        gc.collect()

    return run


def contenders(size: int) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """Per function: (as shipped, unwrapped), each on the spec of ``size`` blocks."""
    text = spec_text(size)
    spec = archbuilder.load_spec(text, check_shapes=False)
    ir = archbuilder.lower(spec)
    (load_paused, load_on), (lower_paused, lower_on) = both(load_spec), both(lower)
    summarize_paused, summarize_on = both(summarize)
    return {
        f"load_spec, {size:,} blocks": (
            lambda: load_paused(text, check_shapes=False),
            lambda: load_on(text, check_shapes=False),
        ),
        f"lower, {size:,} blocks": (lambda: lower_paused(spec), lambda: lower_on(spec)),
        f"summarize, {size:,} blocks": (lambda: summarize_paused(ir), lambda: summarize_on(ir)),
    }


def sampler(draws: int) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    space = archbuilder.load_space(SPACE)
    tree, judge = space._tree, space._judge  # the sampler's own inputs, as SearchSpace passes them
    (sample_paused, sample_on), (estimate_paused, estimate_on) = both(sample), both(estimate)
    return {
        f"sample {draws} candidates": (
            lambda: sample_paused(tree, judge, draws, seed=0),
            lambda: sample_on(tree, judge, draws, seed=0),
        ),
        f"estimate {draws} draws": (
            lambda: estimate_paused(tree, judge, draws, seed=0),
            lambda: estimate_on(tree, judge, draws, seed=0),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    described = machine()  # imports torch: before the freeze below
    cases = {}
    for size in args.sizes:
        cases.update(contenders(size))
    cases.update(sampler(args.draws))
    gc.collect()
    gc.freeze()  # what exists now (modules, the specs) is not rescanned by the collections timed
    print(f"Machine: {described}\nMedian of {args.repeats} calls each, paused and not taking turns\n")
    rows, repeats = [], {}
    for name, (paused, unpaused) in cases.items():
        times = time_interleaved(
            {"paused": collected(paused), "collector on": collected(unpaused)}, repeats=args.repeats, warmup=1
        )
        on, off = median(times["collector on"]), median(times["paused"])
        rows.append([name, f"{on:.3f}", f"{off:.3f}", f"{on / off:.2f}"])
        repeats.update({f"{name}, {kind}": values for kind, values in times.items()})
    print(table(["function", "collector on s", "paused s", "saved ×"], rows))
    print_repeats(repeats, scale=1, unit="s")


if __name__ == "__main__":
    main()
