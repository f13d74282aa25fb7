"""What the subcommands share: loading a spec with ``--set``, argument types, output checks."""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from archbuilder.core.extras import MissingExtra, require
from archbuilder.core.files import output_target
from archbuilder.spec.budget import DEFAULT_MAX_OPS

if TYPE_CHECKING:
    from archbuilder.spec import ArchSpec

__all__ = [
    "STDOUT",
    "Command",
    "TorchUnavailable",
    "UsageError",
    "add_gib_limit",
    "gib",
    "import_torch",
    "load",
    "positive",
    "refuse_overwriting_input",
    "to_stdout",
]

STDOUT = "-"  # `-o -`: write to standard output

# Adds one subcommand: (name, help, run) → its parser, with the shared --set/--debug options.
Command = Callable[[str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit 2)."""


def load(args: argparse.Namespace, path: str) -> ArchSpec:
    """The spec at ``path`` with the command line's ``--set`` overrides applied."""
    from archbuilder.ir import load_spec  # here: `archbuild --version` needs no spec model

    max_ops = getattr(args, "max_ops", DEFAULT_MAX_OPS)
    roots = getattr(args, "allow_path", None) or []
    return load_spec(path, overrides=args.set, max_ops=max_ops, allowed_roots=roots)


class TorchUnavailable(Exception):
    """torch could not be imported here (not installed, or too little memory to load it)."""


def import_torch(command: str):
    """The torch module for ``archbuild command``: MissingExtra (exit 2, the extra to install)
    where it is not installed, TorchUnavailable where it cannot be loaded (a memory limit)."""
    try:
        return require("torch", needed_for=f"archbuild {command}")
    except MissingExtra:
        raise
    except Exception as exc:  # a RuntimeError (bad_alloc) under a memory limit
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise TorchUnavailable(f"cannot load torch, which build and export need ({detail})") from None


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def add_gib_limit(parser: argparse.ArgumentParser, flag: str, default_bytes: int, help: str) -> None:
    """A ``--max-…-gib GIB`` option: a memory limit in GiB (``args.<name>`` is in GiB)."""
    parser.add_argument(
        flag, type=gib, default=default_bytes / 2**30, metavar="GIB", help=f"{help} (default %(default)g GiB)"
    )


def gib(text: str) -> float:
    """An argparse type: a finite size in GiB above 0 (``nan``, ``inf``, ``-1`` are usage errors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0 or value > 2**33:
        raise argparse.ArgumentTypeError(f"must be a finite number of GiB above 0: {text!r}")
    return value


def refuse_overwriting_input(spec: str, output: str | Path) -> None:
    """UsageError when ``output`` is the input; OSError when it may not be written at all."""
    if str(output) == STDOUT:
        return
    target = output_target(output)  # symbolic links resolved, special files refused
    try:
        same = target == Path(spec).resolve()
    except (RuntimeError, OSError, ValueError):
        same = False
    if same:
        raise UsageError(f"the output {output} is the input spec; choose another -o")


def to_stdout(write: Callable[[Path], object], suffix: str) -> None:
    """Run ``write(path)`` on a temporary file named ``*suffix`` and copy it to standard output."""
    with tempfile.TemporaryDirectory(prefix="archbuild-") as folder:
        path = Path(folder) / f"output{suffix}"
        write(path)
        sys.stdout.flush()
        sys.stdout.buffer.write(path.read_bytes())
        sys.stdout.buffer.flush()
