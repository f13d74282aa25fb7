"""The digits example trained plainly and through ``optimize_for_training``, over several seeds.

    python bench/digits_optimized.py [--seeds 0 1 2 3 4] [--epochs 10]

Each run is ``examples/train_digits.py --seed S`` (one thread, no checkpoint), with and without
``--optimize``, in a fresh process; the two take turns seed by seed. The table gives each
run's final test accuracy, the training script's own time (build to last test) and the
process's wall time; the summary compares the spread of the accuracies over the seeds with
the difference between the two, and the median times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, machine, median, print_repeats, table

SCRIPT = ROOT / "examples" / "train_digits.py"
KINDS = {"plain": [], "optimize_for_training": ["--optimize"]}


def run(seed: int, flags: list[str], epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        metrics = Path(folder) / "metrics.json"
        command = [sys.executable, str(SCRIPT), "--seed", str(seed), "--epochs", str(epochs)]
        command += ["--no-checkpoint", "--no-progress", "--metrics", str(metrics), *flags]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=folder)
        wall = time.perf_counter() - start
        result = json.loads(metrics.read_text())
    return {"accuracy": result["test_accuracy"], "seconds": result["seconds"], "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    results: dict[str, dict[int, dict[str, float]]] = {kind: {} for kind in KINDS}
    for index, seed in enumerate(args.seeds):
        order = list(KINDS) if index % 2 == 0 else list(reversed(KINDS))
        for kind in order:
            results[kind][seed] = run(seed, KINDS[kind], args.epochs)

    print(f"Machine: {machine()}")
    print(f"examples/train_digits.py, {args.epochs} epochs, one thread, one fresh process per run\n")
    rows = [
        [str(seed), kind, f"{r['accuracy']:.2%}", f"{r['seconds']:.1f}", f"{r['wall']:.1f}"]
        for seed in args.seeds
        for kind in KINDS
        for r in [results[kind][seed]]
    ]
    print(table(["seed", "run", "test accuracy", "training s", "wall s"], rows))
    summary = []
    for kind in KINDS:
        accuracies = [r["accuracy"] for r in results[kind].values()]
        summary.append(
            [
                kind,
                f"{statistics.mean(accuracies):.2%}",
                f"{statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0:.2%}",
                f"{min(accuracies):.2%}",
                f"{max(accuracies):.2%}",
                f"{median([r['seconds'] for r in results[kind].values()]):.1f}",
                f"{median([r['wall'] for r in results[kind].values()]):.1f}",
            ]
        )
    print(f"\nOver seeds {' '.join(map(str, args.seeds))}:")
    print(table(["run", "mean accuracy", "std", "min", "max", "median training s", "median wall s"], summary))
    plain, optimized = (median([r["seconds"] for r in results[kind].values()]) for kind in KINDS)
    print(f"\noptimize_for_training: {plain / optimized:.2f}× the plain run's training speed")
    print_repeats({kind: [r["seconds"] for r in results[kind].values()] for kind in KINDS}, scale=1, unit="s")


if __name__ == "__main__":
    main()
