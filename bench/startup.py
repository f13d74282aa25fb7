"""Cold start-up of the ``archbuild`` command line: each run a fresh Python process.

    python bench/startup.py                      # this checkout, 21 runs of each command
    python bench/startup.py --against 7a5e526    # and that commit's archbuilder, interleaved

Times the whole process from outside (wall clock, from spawn to exit) for ``archbuild
--version``, ``validate googlenet``, ``summary googlenet``, ``render googlenet --engine
embedded`` and ``python -c "import archbuilder"``, next to ``python -c pass`` (the interpreter's
own start-up, the floor). With ``--against REV`` the same commands also run on REV's
``archbuilder/`` and ``specs/`` (extracted with ``git archive`` into a temporary folder and put first on
PYTHONPATH), taking turns with this checkout's run by run, so that both see the same load.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from benchlib import ROOT, cpu_model, print_repeats, table

# The command lines timed, after `python`: `archbuild` is the installed console script's code.
ARCHBUILD = (
    "-c",
    "import sys; from archbuilder.cli import main; sys.argv[0] = 'archbuild'; sys.exit(main())",
)
COMMANDS: dict[str, tuple[str, ...]] = {
    "python -c pass": ("-c", "pass"),
    'python -c "import archbuilder"': ("-c", "import archbuilder"),
    "archbuild --version": (*ARCHBUILD, "--version"),
    "archbuild validate googlenet": (*ARCHBUILD, "validate", "googlenet"),
    "archbuild summary googlenet": (*ARCHBUILD, "summary", "googlenet"),
    "archbuild render googlenet --engine embedded": (
        *ARCHBUILD,
        "render",
        "googlenet",
        "-o",
        "{out}/googlenet.svg",
        "--engine",
        "embedded",
    ),
}


# Where a command's imports go: each module's own import time ("self", -X importtime) added up
# by the part it belongs to; a standard-library module counts as such whoever imported it.
MODELS = (
    "archbuilder.spec.layers",
    "archbuilder.spec.blocks",
    "archbuilder.spec.model",
    "archbuilder.spec.templates",
)
PARTS = {
    "networkx": "networkx (the IR's graph)",
    "pydantic": "pydantic and pydantic-core",
    "pydantic_core": "pydantic and pydantic-core",
    "annotated_types": "pydantic and pydantic-core",
    "typing_inspection": "pydantic and pydantic-core",
    "typing_extensions": "pydantic and pydantic-core",
    "yaml": "PyYAML",
    "archbuilder": "archbuilder, the rest",
}
BREAKDOWN = "archbuild validate googlenet"
BREAKDOWN_RUNS = 5


def part_of(module: str) -> str:
    if module in MODELS:
        return "spec models (pydantic classes built on import)"
    top = module.split(".")[0]
    if top in PARTS:
        return PARTS[top]
    return "standard library" if top in sys.stdlib_module_names else "other"


def import_breakdown(
    args: Sequence[str], env: dict[str, str], cwd: Path, runs: int
) -> dict[str, list[float]]:
    """Seconds of each part's own import time, one value per fresh ``python -X importtime *args``."""
    parts: dict[str, list[float]] = {}
    for round_ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", *args], env=env, cwd=cwd, capture_output=True, text=True
        )
        totals: dict[str, float] = {}
        for line in result.stderr.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if not line.startswith("import time:") or not fields[0].strip().isdigit():
                continue  # the header line, or the command's own output
            part = part_of(fields[2].strip())
            totals[part] = totals.get(part, 0.0) + int(fields[0]) / 1e6
        for part, seconds in totals.items():
            parts.setdefault(part, [0.0] * round_).append(seconds)
    return parts


def checkout_of(rev: str, folder: Path) -> Path:
    """REV's archbuilder/ package (and the shipped specs it links to), extracted under ``folder``:
    the folder to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "archbuilder", "specs"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    folder.mkdir()
    path = folder / "archive.tar"
    path.write_bytes(archive.stdout)
    with tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    return folder


class Run(NamedTuple):
    wall: float  # seconds from spawning the process to its exit
    cpu: float  # its user + system CPU seconds: less sensitive than the wall clock to other load


def run_once(args: Sequence[str], env: dict[str, str], cwd: Path) -> Run:
    """One fresh ``python *args``; a failure stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"python {' '.join(args)} failed ({result.returncode}):\n{result.stderr.decode()}")
    return Run(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def p90(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per command (default 21)")
    parser.add_argument("--against", metavar="REV", help="also time this commit's archbuilder, interleaved")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 (for a p90)")

    with tempfile.TemporaryDirectory(prefix="archbuilder-startup-") as temp:
        work = Path(temp)
        trees = {"this checkout": ROOT}
        if args.against:
            trees = {args.against: checkout_of(args.against, work / "against"), **trees}
        environments = {name: {**os.environ, "PYTHONPATH": str(tree)} for name, tree in trees.items()}
        contenders = [(tree, command) for command in COMMANDS for tree in trees]
        # A warm-up run of each: byte-compiles each tree, so that no timed run pays for it.
        for tree, command in contenders:
            run_once([arg.format(out=work) for arg in COMMANDS[command]], environments[tree], work)

        print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
        print(f"load average before: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
        if args.against:
            print(f"against: {args.against} ({rev_line(args.against)})")
        print(
            f"{args.runs} fresh processes of each command, taking turns run by run; wall clock and CPU time"
        )

        times: dict[tuple[str, str], list[Run]] = {contender: [] for contender in contenders}
        for round_ in range(args.runs):
            shift = round_ % len(contenders)  # rotate who goes first
            for tree, command in contenders[shift:] + contenders[:shift]:
                argv = [arg.format(out=work) for arg in COMMANDS[command]]
                times[tree, command].append(run_once(argv, environments[tree], work))

        breakdown = import_breakdown(
            [arg.format(out=work) for arg in COMMANDS[BREAKDOWN]],
            environments["this checkout"],
            work,
            BREAKDOWN_RUNS,
        )

    print()
    print(table(*summary_table(times, args.against)))
    print(
        f"\nWhere `{BREAKDOWN}`'s imports go (this checkout; -X importtime's self times, median of {BREAKDOWN_RUNS}):\n"
    )
    print(table(*breakdown_table(breakdown)))
    print_repeats(
        {f"{command} ({tree}), wall": [run.wall for run in runs] for (tree, command), runs in times.items()}
    )
    print_repeats(
        {f"{command} ({tree}), CPU": [run.cpu for run in runs] for (tree, command), runs in times.items()}
    )
    return 0


def summary_table(
    times: dict[tuple[str, str], list[Run]], against: str | None
) -> tuple[list[str], list[list[str]]]:
    """Per command: this checkout's wall median and p90 and CPU median; with ``against``, the
    same for that commit and the ratio of the wall medians."""
    headers = ["command", "wall median ms", "wall p90 ms", "CPU median ms"]
    if against:
        headers += [
            f"{against} wall median ms",
            f"{against} wall p90 ms",
            f"{against} CPU median ms",
            "speed-up",
        ]
    rows = []
    for command in COMMANDS:
        row = figures(times["this checkout", command])
        if against:
            before = times[against, command]
            speedup = statistics.median(run.wall for run in before) / statistics.median(
                run.wall for run in times["this checkout", command]
            )
            row += [*figures(before), f"{speedup:.2f}×"]
        rows.append([command, *row])
    return headers, rows


def breakdown_table(parts: dict[str, list[float]]) -> tuple[list[str], list[list[str]]]:
    medians = {part: statistics.median(values) for part, values in parts.items()}
    total = sum(medians.values())
    rows = [
        [part, f"{seconds * 1e3:.0f}", f"{seconds / total:.0%}"]
        for part, seconds in sorted(medians.items(), key=lambda item: -item[1])
    ]
    return ["part", "ms", "share"], [*rows, ["all imports", f"{total * 1e3:.0f}", "100%"]]


def figures(runs: Sequence[Run]) -> list[str]:
    walls = [run.wall for run in runs]
    return [
        f"{statistics.median(walls) * 1e3:.0f}",
        f"{p90(walls) * 1e3:.0f}",
        f"{statistics.median(run.cpu for run in runs) * 1e3:.0f}",
    ]


def rev_line(rev: str) -> str:
    """The commit's hash and subject's first words."""
    line = subprocess.run(
        ["git", "log", "-1", "--format=%h %s", rev], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return line[:80] + ("…" if len(line) > 80 else "")


if __name__ == "__main__":
    sys.exit(main())
