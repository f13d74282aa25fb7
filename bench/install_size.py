"""The spec-only install against the one with torch: install time and size, from the wheel.

    python bench/install_size.py              # pip install archbuilder, then archbuilder[torch]
    python bench/install_size.py --no-torch   # the spec-only install alone (quick)

Builds this checkout's wheel (``pip wheel . --no-deps``), then for each install makes a fresh
venv in a temporary folder outside the checkout and times ``pip install <wheel>`` (or
``<wheel>[torch]``) as a user runs it, with pip's own configuration (its index and cache: where
the packages are already cached or on local disk, the time is pip's and not the download's).
Reports the wall time, the size of the venv's site-packages on disk (as ``du -s``), the number
of distributions and the largest of them; then runs the README's spec-only commands in the
spec-only venv with a bare environment (``validate``, ``summary``, ``render``: exit 0) and
``archbuild build`` (exit 2, one line naming the extra), and ``build`` in the torch venv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchlib import ROOT, table

EXTRAS = {"spec-only": "", "torch": "[torch]"}
SPEC_ONLY_COMMANDS = (
    ("validate", "googlenet"),
    ("summary", "googlenet"),
    ("render", "googlenet", "-o", "g.svg"),
)


def build_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(ROOT)]
    subprocess.run(command, check=True, capture_output=True)
    (wheel,) = folder.glob("archbuilder-*.whl")
    return wheel


def disk_bytes(folder: Path) -> int:
    """What ``du -s`` counts: the blocks each file and folder takes, each hard link once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in (folder, *folder.rglob("*")):
        stat = path.lstat()
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_blocks * 512
    return total


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3*/site-packages")
    return found


def largest(site: Path, count: int) -> list[tuple[str, int]]:
    """The ``count`` largest top-level entries of site-packages (a package and its libraries)."""
    sizes: Counter[str] = Counter()
    for entry in site.iterdir():
        name = entry.name.split("-")[0] if entry.name.endswith(".dist-info") else entry.name
        sizes[name.lower().replace(".libs", "")] += (
            disk_bytes(entry) if entry.is_dir() else entry.lstat().st_size
        )
    return sizes.most_common(count)


def bare_env(venv: Path, home: Path) -> dict[str, str]:
    """As ``env -i HOME=... PATH=<venv>/bin:/usr/bin``: nothing of this checkout's environment."""
    return {"HOME": str(home), "PATH": f"{venv / 'bin'}:/usr/bin"}


def run(venv: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["archbuild", *args], cwd=home, env=bare_env(venv, home), capture_output=True, text=True, timeout=600
    )


def install(wheel: Path, extra: str, folder: Path) -> tuple[Path, float]:
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    started = time.perf_counter()
    pip = [str(venv / "bin" / "pip"), "install", "-q", f"{wheel}{extra}"]
    subprocess.run(pip, check=True, capture_output=True, env=env, cwd=folder)
    return venv, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-torch", action="store_true", help="the spec-only install alone")
    parser.add_argument("--largest", type=int, default=6, help="distributions listed per install (6)")
    args = parser.parse_args()
    rows, details, checks = [], [], []
    with tempfile.TemporaryDirectory(prefix="archbuilder-install-") as temp:
        temp = Path(temp)
        wheel = build_wheel(temp / "dist")
        print(f"wheel: {wheel.name}, {wheel.stat().st_size / 1e3:.0f} kB")
        for name, extra in EXTRAS.items():
            if args.no_torch and extra:
                continue
            folder = temp / name
            folder.mkdir()
            venv, seconds = install(wheel, extra, folder)
            site = site_packages(venv)
            size = disk_bytes(site)
            distributions = len(list(site.glob("*.dist-info")))
            rows.append(
                [f"pip install archbuilder{extra}", f"{seconds:.1f}", f"{size / 2**20:.0f}", distributions]
            )
            top = ", ".join(
                f"{package} {nbytes / 2**20:.0f}" for package, nbytes in largest(site, args.largest)
            )
            details.append(f"- archbuilder{extra}: {top}")
            # the spec-only commands where torch is not installed; build in both
            commands = (*(() if extra else SPEC_ONLY_COMMANDS), ("build", "googlenet"))
            for command in commands:
                result = run(venv, folder, *command)
                said = (result.stderr.strip() or result.stdout.strip()).splitlines()
                checks.append(
                    [f"archbuild {' '.join(command)}", name, result.returncode, said[-1] if said else ""]
                )
    print()
    print(table(["install", "pip install (s)", "site-packages (MiB)", "distributions"], rows))
    print("\nLargest distributions (MiB on disk):")
    print("\n".join(details))
    print("\nCommands in each venv (env -i HOME=... PATH=<venv>/bin:/usr/bin), exit status and last line:\n")
    print(table(["command", "venv", "exit", "last line"], checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
