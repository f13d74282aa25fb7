"""What the doc generators in tools/ share: write a regenerated page, or check that it is current."""

from __future__ import annotations

from pathlib import Path

from archbuilder.core.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(doc: Path, document: str, updated: str, *, check: bool, incomplete: bool = False) -> int:
    """With ``check``, say whether ``doc`` is stale and return 1 if it is (or ``incomplete``);
    else write ``updated`` when it differs. Returns the exit status."""
    if check:
        stale = updated != document
        print(f"{doc.relative_to(ROOT)} is {'stale' if stale else 'current'}")
        return 1 if stale or incomplete else 0
    if updated != document:
        write_atomic(doc, updated.encode())
    print(f"wrote {doc.relative_to(ROOT)}")
    return 0
