"""Render time of a spec's diagram at each detail level, with system and embedded Graphviz.

    python bench/render_time.py [SPEC] [--repeats N]

Times the whole `render_diagram` call (load, lower, draw, lay out, write) per detail level
and engine, after one warm-up call, and prints the median of the repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, cpu_model, print_repeats, table

from archbuilder.render import DETAILS, render_diagram
from archbuilder.render.output import has_system_graphviz


def graphviz_version() -> str:
    if not has_system_graphviz():
        return "not installed"
    result = subprocess.run(["dot", "-V"], capture_output=True, text=True)
    return result.stderr.strip()


def median_seconds(spec: Path, output: Path, detail: str, engine: str, repeats: int) -> float:
    render_diagram(spec, output, detail=detail, engine=engine)  # warm-up (imports, wasm compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_diagram(spec, output, detail=detail, engine=engine)
        times.append(time.perf_counter() - start)
    REPEATS[f"{detail}, {engine} {output.suffix[1:].upper()}"] = times
    return statistics.median(times)


REPEATS: dict[str, list[float]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "googlenet.yaml"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    engines = ["embedded"] + (["system"] if has_system_graphviz() else [])
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"system Graphviz: {graphviz_version()}")
    print(
        f"spec: {Path(args.spec).relative_to(ROOT) if Path(args.spec).is_relative_to(ROOT) else args.spec}; median of {args.repeats} after a warm-up\n"
    )
    columns = [f"{engine} SVG" for engine in engines] + (["system PNG"] if "system" in engines else [])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for detail in DETAILS:
            cells = [
                median_seconds(Path(args.spec), Path(folder) / "d.svg", detail, engine, args.repeats)
                for engine in engines
            ]
            if "system" in engines:
                cells.append(
                    median_seconds(Path(args.spec), Path(folder) / "d.png", detail, "system", args.repeats)
                )
            rows.append([detail, *(f"{cell * 1000:.0f} ms" for cell in cells)])
    print(table(["detail", *columns], rows))
    print_repeats(REPEATS)


if __name__ == "__main__":
    main()
