"""Run every benchmark the docs quote and store its raw output in bench/results/.

    python bench/run_all.py                    # all of them, full size (about 30 min on 2 cores)
    python bench/run_all.py build scale        # only these
    python bench/run_all.py --quick            # every script at a tiny size, into a temp folder
    python bench/run_all.py --list

Each benchmark runs as its own process and its output goes to
``bench/results/<machine>-<name>.txt`` (``--out`` for another folder), under a header with
the command, the date, the commit, the machine (CPU model, the instruction sets oneDNN
chooses kernels by, cores, memory), the Python, torch, oneDNN and torchvision versions, the
load average before the run and how long it took. The scripts print the repeats behind every
median they report. ``python -m tools.docs performance`` turns these files into
docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from benchlib import ROOT, cpu_flags, cpu_model, onednn_version

from archbuilder.core.files import write_atomic


class Benchmark(NamedTuple):
    script: str  # under bench/, or a path from the repository root when it holds a "/"
    args: tuple[str, ...]
    quick: tuple[str, ...]  # a tiny run that exercises the same code
    # run in a new empty folder: for a script that writes its files (a study's database, a
    # report) in the current one, so that a rerun starts afresh and leaves the checkout alone
    in_temp: bool = False
    # environment variables set for this run only, as (name, value) pairs; the log's command
    # starts with them and its header repeats them (ISA_CAPS among them: "emulated")
    env: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> Path:
        return Path(self.script) if "/" in self.script else Path("bench") / self.script

    def command(self, *, quick: bool = False) -> str:
        """The command line a log's header gives, its environment variables first."""
        settings = [f"{name}={value}" for name, value in self.env]
        return " ".join([*settings, "python", str(self.path), *(self.quick if quick else self.args)])


# Variables that cap the instruction sets kernels are chosen by: oneDNN's (convs, int8, and
# torch's oneDNN-bf16 check), ATen's (pools, elementwise, concat; inductor's code) and MKL's
# (its GEMM; honoured on Intel CPUs only). Set below the CPU's own, they emulate an older CPU's
# kernels on this one's cores: not that CPU's speed.
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
AVX2_EMULATED = (
    ("ONEDNN_MAX_CPU_ISA", "AVX2"),
    ("ATEN_CPU_CAPABILITY", "avx2"),
    ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
)
ISA_ARGS = ("--profile", "--variants", "--repeats", "15")
ISA_QUICK = (
    "--batch",
    "1",
    "--repeats",
    "2",
    "--no-compile",
    "--no-int8",
    "--no-digits",
    "--profile",
    "--variants",
)


LINEAGE = (
    "inception-v3",
    "bn-inception",
    "inception-v4",
    "inception-resnet-v2",
    "xception",
    "inception-next-tiny",
)
BENCHMARKS = {  # in the order they run: the longest (compile) last
    "build": Benchmark("build_time.py", (), ("--repeats", "2")),
    "scale": Benchmark("scale.py", ("--repeats", "5"), ("--sizes", "10", "100", "--repeats", "2")),
    "gc-pause": Benchmark(
        "gc_pause.py", ("--repeats", "5"), ("--sizes", "10", "--repeats", "1", "--draws", "5")
    ),
    "render": Benchmark("render_time.py", (), ("--repeats", "1")),
    "install-size": Benchmark("install_size.py", (), ("--no-torch",), in_temp=True),
    "serve-latency": Benchmark("serve_latency.py", (), ("--specs", "googlenet", "--saves", "2")),
    # issue 29: archbuild's cold start-up, against the commit before the imports were deferred
    "startup": Benchmark(
        "startup.py", ("--against", "7a5e526", "--runs", "21"), ("--against", "HEAD", "--runs", "2")
    ),
    # issue 27: every shipped spec's static picture at every detail and layout, read back from its SVG
    "diagram-geometry": Benchmark(
        "diagram_geometry.py",
        ("--rankdir", "TB", "LR", "--engine", "embedded", "system"),
        ("googlenet-naive", "--detail", "blocks", "branches", "--layout", "auto"),
    ),
    "maxpool": Benchmark("maxpool.py", (), ("--repeats", "3")),
    # issue 31: optimize_for_training against torchvision's recipes; peak memory; checkpointing
    "train": Benchmark(
        "train_step.py",
        ("--batch", "8", "32", "--ablation"),
        ("--batch", "2", "--repeats", "2", "--ablation"),
    ),
    "train-compile": Benchmark(
        "train_step.py",
        ("--compile", "--recompute-pools", "--no-memory", "--repeats", "6"),
        ("--compile", "--no-memory", "--batch", "1", "--repeats", "1"),
    ),
    "train-memory": Benchmark(
        "train_step.py",
        ("--memory-sweep", "--sweep-batches", "16", "24", "32"),
        ("--memory-sweep", "--sweep-batches", "2", "3"),
    ),
    "digits-optimized": Benchmark("digits_optimized.py", (), ("--seeds", "0", "1", "--epochs", "1")),
    "train-v3": Benchmark(
        "train_step.py",
        ("--model", "inception-v3", "--repeats", "5"),
        ("--model", "inception-v3", "--batch", "1", "--repeats", "1"),
    ),
    "train-resnet50": Benchmark(
        "train_step.py",
        ("--model", "resnet50", "--repeats", "5"),
        ("--model", "resnet50", "--batch", "1", "--repeats", "1"),
    ),
    "inference": Benchmark(
        "inference.py",
        ("--ablation", "--profile", "--compile"),
        ("--batch", "1", "--repeats", "2", "--ablation", "--profile"),
    ),
    "inference-v3": Benchmark(
        "inference.py",
        ("--model", "inception-v3", "--ablation", "--profile", "--repeats", "15"),
        ("--model", "inception-v3", "--batch", "1", "--repeats", "2"),
    ),
    "inference-resnet50": Benchmark(
        "inference.py",
        ("--model", "resnet50", "--ablation", "--profile", "--repeats", "15"),
        ("--model", "resnet50", "--batch", "1", "--repeats", "2"),
    ),
    "precision": Benchmark(
        "precision.py",
        ("--batch", "1", "8", "--repeats", "20", "--cpp-wrapper", "--profile", "--accuracy"),
        ("--batch", "1", "--repeats", "2", "--no-compile", "--no-int8"),
    ),
    "precision-lineage": Benchmark(
        "precision.py",
        ("--spec", *LINEAGE, "--repeats", "10", "--no-compile-twin"),
        ("--spec", "bn-inception", "--repeats", "2", "--no-compile", "--no-int8"),
    ),
    "digits": Benchmark("digits.py", (), ("--epochs", "1", "--runs", "default")),
    "space": Benchmark("space.py", ("--count", "1000"), ("--count", "5")),
    "fuzz": Benchmark("fuzz_specs.py", ("--mutants", "5000", "--seed", "7"), ("--mutants", "24")),
    "fuzz-structural": Benchmark(
        "fuzz_specs.py", ("--structural", "3000", "--seed", "7"), ("--structural", "5")
    ),
    # issue 26: the importers' and the space files' structure-aware fuzzers
    "fuzz-importers": Benchmark(
        "fuzz_importers.py",
        ("--onnx", "3000", "--prototxt", "3000", "--caffemodel", "3000", "--seed", "7"),
        ("--onnx", "5", "--prototxt", "5", "--caffemodel", "5"),
    ),
    "fuzz-space": Benchmark("fuzz_space.py", ("--cases", "1000", "--seed", "7"), ("--cases", "5")),
    "search": Benchmark(
        "examples/search_digits.py",
        ("--trials", "24", "--seed", "0"),
        ("--trials", "2", "--epochs", "1", "--seed", "0"),
        in_temp=True,
    ),
    # GoogLeNet's paths against the fp32 floor on this CPU's instruction set, then under oneDNN's,
    # ATen's and MKL's AVX2 caps (issue 25: CPUs without AVX-512)
    "isa": Benchmark("isa.py", ISA_ARGS, ISA_QUICK),
    "isa-avx2-emulated": Benchmark("isa.py", ISA_ARGS, ISA_QUICK, env=AVX2_EMULATED),
    "compile": Benchmark("compile_time.py", (), ("--models", "small", "--rounds", "1", "--no-same-process")),
}


def machine_name() -> str:
    """A short name for this machine: the CPU family and the core count (``xeon2``)."""
    model = cpu_model().lower()
    family = next(
        (name for name in ("xeon", "epyc", "ryzen", "core", "apple") if name in model), platform.machine()
    )
    return f"{family}{os.cpu_count()}"


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "unknown memory"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    sha = git("rev-parse", "HEAD") or "unknown"
    # bench/results is left out: the logs this run writes would make every later log "dirty".
    dirty = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "archbuilder",
        "bench",
        "examples",
        "specs",
        ":!bench/results",
    )
    return sha + (" (with uncommitted changes to archbuilder/, bench/, examples/ or specs/)" if dirty else "")


def environment(env: tuple[tuple[str, str], ...]) -> str:
    """The header's line for a run's own environment variables ("" for none)."""
    if not env:
        return ""
    line = "environment: " + " ".join(f"{name}={value}" for name, value in env)
    caps = [name for name, _ in env if name in ISA_CAPS]
    if caps:
        line += (
            f" (emulated: {', '.join(caps)} cap the instruction sets that kernels are chosen by below "
            "this CPU's own; an older CPU's kernels on this one's cores, not that CPU's speed)"
        )
    return line + "\n"


def header(command: str, seconds: float, load: str, env: tuple[tuple[str, str], ...] = ()) -> str:
    import torch

    try:
        import torchvision

        vision = f", torchvision {torchvision.__version__}"
    except ImportError:
        vision = ""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"command: {command}\n"
        f"date: {now}\n"
        f"commit: {commit()}\n"
        f"machine: {cpu_model()}; {os.cpu_count()} logical cores; {memory_gib()}; "
        f"flags: {' '.join(cpu_flags()) or 'none of ' + 'avx2/avx512/vnni/amx'}\n"
        f"software: Python {platform.python_version()}, torch {torch.__version__}, "
        f"oneDNN {onednn_version()}{vision}\n"
        f"{environment(env)}"
        f"load average before: {load}\n"
        f"took: {seconds:.1f} s\n"
        "----\n"
    )


def process_environment(caps: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """This process's environment with ``caps`` set. Inductor keys its caches without ATen's
    cap (torch 2.14.1): code compiled under one and loaded by a run under another corrupts the
    heap, so a capped run compiles into a cache of its own."""
    env = {**os.environ, **dict(caps)}
    if "ATEN_CPU_CAPABILITY" in dict(caps):
        cache = f"torchinductor-{getpass.getuser()}-{env['ATEN_CPU_CAPABILITY']}"
        env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), cache)
    return env


def run(name: str, benchmark: Benchmark, *, quick: bool, out: Path, machine: str) -> bool:
    args = benchmark.quick if quick else benchmark.args
    command = benchmark.command(quick=quick)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{name}: {command}", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"archbuilder-{name}-") as folder:
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(ROOT / benchmark.path), *args],
            cwd=folder if benchmark.in_temp else ROOT,
            env=process_environment(benchmark.env),
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    text = header(command, seconds, load, benchmark.env) + result.stdout
    if result.returncode != 0 or result.stderr.strip():
        text += f"\n---- stderr (exit status {result.returncode}) ----\n{result.stderr}"
    path = out / f"{machine}-{name}.txt"
    write_atomic(path, text.encode())
    print(f"  {'ok' if result.returncode == 0 else 'FAILED'} in {seconds:.1f} s -> {path}", flush=True)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="tiny runs, to check that every script works")
    parser.add_argument(
        "--out", type=Path, help="folder for the logs (default bench/results, or a temp folder with --quick)"
    )
    parser.add_argument(
        "--machine", default=machine_name(), help="the logs' name prefix (default %(default)s)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; the benchmarks are {', '.join(BENCHMARKS)}")
    chosen = args.names or list(BENCHMARKS)
    if args.list:
        for name in chosen:
            b = BENCHMARKS[name]
            print(f"{name:<18} {b.command()}")
        return 0
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="archbuilder-bench-")) if args.quick else ROOT / "bench" / "results"
    )
    out.mkdir(parents=True, exist_ok=True)
    failed = [
        name
        for name in chosen
        if not run(name, BENCHMARKS[name], quick=args.quick, out=out, machine=args.machine)
    ]
    if failed:
        print(f"failed: {', '.join(failed)} (the log's stderr section says why)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
