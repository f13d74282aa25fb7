"""Check or write what the targets render: a region of a file, or a whole file."""

from __future__ import annotations

from collections.abc import Sequence

from archbuilder.core.files import write_atomic
from tools.docs.regions import regions, replace
from tools.docs.target import Output, Tree


def stale(outputs: Sequence[Output], tree: Tree) -> list[str]:
    """The label of every output that is not what ``tree`` holds (a missing file or region is stale)."""
    found = []
    for output in outputs:
        current = tree.read(output.path)
        if output.region is not None and current is not None:
            current = regions(current).get(output.region)
        if current != output.text:
            found.append(output.label)
    return found


def write(outputs: Sequence[Output], tree: Tree) -> list[str]:
    """Write each file whose outputs differ from what ``tree`` holds, atomically; the paths written."""
    by_path: dict[str, list[Output]] = {}
    for output in outputs:
        by_path.setdefault(output.path, []).append(output)
    written = []
    for path, parts in by_path.items():
        current = tree.read(path)
        if parts[0].region is None:
            [whole] = parts  # a whole file has no regions besides
            updated = whole.text
        else:
            updated = replace(current or "", {part.region: part.text for part in parts}, path)
        if updated != current:
            file = tree.root / path
            file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(file, updated.encode())
            written.append(path)
    return written
