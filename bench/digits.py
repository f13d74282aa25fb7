"""examples/train_digits.py's test accuracy and time, in the configurations the docs quote.

    python bench/digits.py [--runs default threads-1 ...] [--epochs 10]

Each run is the unchanged example in a fresh process (``torchrun`` for the two-process run),
with ``--no-checkpoint --no-progress --metrics``. The ``loaded-*`` runs share the machine with
one busy process per core (what a laptop or a shared server does to a training run), to show
how each thread count holds up under contention. Reported per run: the final test accuracy,
the accuracy after epoch 8, the training time the script reports and the whole process's
wall time (imports and data loading included); then every run's per-epoch log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchlib import ROOT, machine, table

EXAMPLE = str(ROOT / "examples" / "train_digits.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
RUNS = {  # name: (how it is started, the example's extra arguments)
    "default": ([sys.executable], []),
    "threads-2": ([sys.executable], ["--threads", "2"]),
    "processes-2": (TORCHRUN, []),
    "seed-1": ([sys.executable], ["--seed", "1"]),
    "seed-2": ([sys.executable], ["--seed", "2"]),
    "loaded-default": ([sys.executable], []),
    "loaded-threads-2": ([sys.executable], ["--threads", "2"]),
}
BUSY = "while True: pass"


@contextlib.contextmanager
def load(busy: bool) -> Iterator[None]:
    """One busy-looping process per core while the block runs (when ``busy``)."""
    burners = (
        [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(os.cpu_count() or 1)] if busy else []
    )
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def run(name: str, epochs: int) -> dict:
    launcher, extra = RUNS[name]
    with tempfile.TemporaryDirectory() as folder, load(name.startswith("loaded")):
        metrics = Path(folder) / "metrics.json"
        command = [*launcher, EXAMPLE, "--no-checkpoint", "--no-progress", "--epochs", str(epochs)]
        command += ["--metrics", str(metrics), *extra]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{name} failed:\n{result.stderr[-2000:]}")
        data = json.loads(metrics.read_text())
    data["wall"] = wall
    data["log"] = result.stdout
    return data


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    results = {name: run(name, args.epochs) for name in args.runs}
    print(f"Machine: {machine()}\n{args.epochs} epochs; one fresh process (or torchrun) per run\n")
    rows = []
    for name, data in results.items():
        history = data["history"]
        after_8 = f"{history[7]['test_accuracy']:.2%}" if len(history) >= 8 else "-"
        epoch_s = data["seconds"] / len(history)
        rows.append(
            [
                name,
                f"{data['test_accuracy']:.2%}",
                after_8,
                f"{data['seconds']:.1f}",
                f"{epoch_s:.1f}",
                f"{data['wall']:.1f}",
            ]
        )
    print(table(["run", "test accuracy", "after epoch 8", "training s", "s / epoch", "wall s"], rows))
    for name, data in results.items():
        print(f"\n{name}:\n{data['log'].strip()}")


if __name__ == "__main__":
    main()
