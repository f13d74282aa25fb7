"""docs/variants.md: the tables of the GoogLeNet variants (target ``variants``).

Only the region ``variants`` of the page is written; the prose around it is edited by hand.
Every figure comes from ``archbuilder.summarize`` on the shipped specs, so the output depends
on nothing but the specs and archbuilder (it is the same on every machine).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import archbuilder
from archbuilder.analysis.summary import Summary
from archbuilder.catalog.variants import VARIANTS, emit
from tools.docs import SPECS, regions
from tools.docs.markdown import giga, shape_text, table
from tools.docs.target import Output, Tree

DOC = "docs/variants.md"
REGION = "variants"
# The header line `archbuild emit` writes: "... `archbuild emit SOURCE --variant NAME`."
EMITTED = re.compile(r"^# \S+: emitted by `archbuild emit .* --variant (\S+)`\.$", re.MULTILINE)
UNKNOWN = "—"


class Entry(NamedTuple):
    file: str  # name in specs/
    variant: str  # a key of VARIANTS, or UNKNOWN
    summary: Summary


def variant_of(path: Path) -> str:
    """The variant a shipped spec is: from its `archbuild emit` header, or, for a hand-written
    spec, the layout variant it already is (``emit`` changes nothing but its name)."""
    text = path.read_text(encoding="utf-8")
    match = EMITTED.search(text.split("format:", 1)[0])
    if match:
        return match.group(1)
    spec = archbuilder.load_spec(path)
    content = lambda s: {k: v for k, v in s.to_dict().items() if k not in ("name", "description")}  # noqa: E731
    for name in ("v1", "v1-bn", "torchvision"):
        try:
            if content(emit(spec, name)) == content(spec):
                return name
        except ValueError:  # not a GoogLeNet-like spec: the variant does not apply
            continue
    return UNKNOWN


def entries() -> list[Entry]:
    """Every spec in specs/ that is one of the variants (emitted, or equal to its emission),
    in the order of ``VARIANTS`` (then by file name). Other specs, GoogLeNet-style or not,
    are not listed."""
    found = [
        Entry(path.name, variant, archbuilder.summarize(path))
        for path in sorted(SPECS.glob("*.yaml"))
        if (variant := variant_of(path)) != UNKNOWN
    ]
    order = {name: index for index, name in enumerate(VARIANTS)}
    return sorted(found, key=lambda entry: (order.get(entry.variant, len(order)), entry.file))


def _overview(found: list[Entry]) -> str:
    rows = []
    for entry in found:
        summary = entry.summary
        blocks = [row for row in summary.rows if row.section in ("stem", "blocks")]
        output = [row for row in summary.rows if row.section != "aux"][-1]
        rows.append(
            [
                f"[{entry.file}](../specs/{entry.file})",
                f"`{entry.variant}`" if entry.variant != UNKNOWN else UNKNOWN,
                f"{summary.params:,}",
                f"{summary.inference_params:,}",
                giga(summary.inference_macs),
                shape_text(blocks[-1].out_shape) if blocks else UNKNOWN,
                shape_text(output.out_shape),
            ]
        )
    header = [
        "Spec",
        "Variant",
        "Params",
        "Params without aux heads",
        "GMACs without aux heads",
        "Last block output",
        "Output",
    ]
    return table(header, rows, right={2, 3, 4, 5, 6})


def _per_block(found: list[Entry]) -> str:
    columns = [entry for entry in found if any(row.kind == "inception" for row in entry.summary.rows)]
    names: list[str] = []  # inception blocks of the stem and blocks sections, in network order
    cells: dict[tuple[str, str], tuple[int, int]] = {}
    for entry in columns:
        for row in entry.summary.rows:
            if row.kind == "inception" and row.section in ("stem", "blocks"):
                if row.name not in names:
                    names.append(row.name)
                cells[entry.file, row.name] = (row.out_shape[0], row.macs)
    rows = []
    for name in names:
        line = [f"`{name}`"]
        for entry in columns:
            channels, macs = cells.get((entry.file, name), (None, None))
            line += [UNKNOWN, UNKNOWN] if channels is None else [str(channels), f"{macs / 1e6:,.1f}"]
        rows.append(line)
    total = ["all inception blocks"]
    for entry in columns:
        macs = sum(cells[entry.file, name][1] for name in names if (entry.file, name) in cells)
        total += ["", f"{macs / 1e6:,.1f}"]
    rows.append(total)
    header = ["Block"]
    for entry in columns:
        label = entry.variant if entry.variant != UNKNOWN else entry.file
        header += [f"{label} C", f"{label} M"]
    return table(header, rows, right=set(range(1, len(header))))


def _diagrams(found: list[Entry]) -> str:
    rows = []
    for entry in found:
        stem = Path(entry.file).stem
        rows.append(
            [
                f"`{entry.variant}`" if entry.variant != UNKNOWN else UNKNOWN,
                f"[{stem}.svg](diagrams/{stem}.svg)",
                f"[{stem}-blocks.svg](diagrams/{stem}-blocks.svg)",
            ]
        )
    return table(["Variant", "Every op (branches detail)", "One node per block (blocks detail)"], rows)


def generated() -> str:
    """The body of the region ``variants`` of docs/variants.md, ending in a newline."""
    found = entries()
    inputs = " or ".join(sorted({shape_text(entry.summary.input_shape) for entry in found}))
    lines = [
        "### Totals",
        "",
        f"Parameters are trainable parameters. MACs and shapes are per {inputs} input sample "
        "(see [python-api.md](python-api.md#macs)).",
        "",
        _overview(found),
        "",
        "### Per Inception block",
        "",
        "C: the block's output channels. M: its MACs, in millions, per sample.",
        "",
        _per_block(found),
        "",
        "### Diagrams",
        "",
        _diagrams(found),
    ]
    return "\n".join(lines) + "\n"


def render(document: str) -> str:
    """``document`` (the text of docs/variants.md) with its generated region replaced."""
    return regions.replace(document, {REGION: generated()}, DOC)


def current(document: str) -> str | None:
    """The generated region as it stands in ``document`` (None when its lines are missing)."""
    return regions.regions(document).get(REGION)


def outputs(tree: Tree) -> list[Output]:
    return [Output(DOC, REGION, generated())]
