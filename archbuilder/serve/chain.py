"""The files a spec reads: itself and, in order, every file its ``extends`` chain names."""

from __future__ import annotations

from pathlib import Path

from archbuilder.core.errors import SpecError
from archbuilder.core.files import read_regular
from archbuilder.spec.compose import base_path
from archbuilder.spec.load import MAX_EXTENDS_DEPTH, MAX_SPEC_BYTES
from archbuilder.spec.source import parse_yaml

__all__ = ["extends_chain"]


def extends_chain(spec: str | Path) -> list[Path]:
    """``spec`` and the files its ``extends`` chain names, as far as they can be read now.

    The chain is followed as the loader follows it (paths relative to the including file,
    shipped names); a file that cannot be read or parsed ends it there, so that a save which
    breaks a base still leaves that base watched. Whether a file may be read at all is the
    loader's to say: this list only decides which files are watched.
    """
    chain = [Path(spec)]
    while len(chain) <= MAX_EXTENDS_DEPTH:
        current = chain[-1]
        try:
            data, source = parse_yaml(read_regular(current, max_bytes=MAX_SPEC_BYTES).decode(), str(current))
            if not isinstance(data, dict) or "extends" not in data:
                break
            base = base_path(data["extends"], str(current), source.positions[("extends",)])
            if any(base.resolve() == link.resolve() for link in chain):
                break  # a cycle: the loader reports it
        except (OSError, ValueError, SpecError, RecursionError, RuntimeError):
            break  # unreadable, not UTF-8 (a ValueError), not YAML, a link loop: the loader says which
        chain.append(base)
    return chain
