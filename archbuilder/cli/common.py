"""What the subcommands share: loading a spec with ``--set``, argument types, output checks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from archbuilder.spec import ArchSpec, load_spec

__all__ = ["Command", "UsageError", "load", "positive", "refuse_overwriting_input"]

# Adds one subcommand: (name, help, run) → its parser, with the shared --set/--debug options.
Command = Callable[[str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit 2)."""


def load(args: argparse.Namespace, path: str) -> ArchSpec:
    """The spec at ``path`` with the command line's ``--set`` overrides applied."""
    return load_spec(path, overrides=args.set)


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def refuse_overwriting_input(spec: str, output: str | Path) -> None:
    if Path(output).resolve() == Path(spec).resolve():
        raise UsageError(f"the output {output} is the input spec; choose another -o")
