"""docs/inception-family.md: the size tables of the Inception lineage (target ``inception-family``).

Each table is the region ``sizes/FILE`` of the page (FILE a spec in specs/, or ``overview`` for
the table of all of them), placed by hand; the prose around them is edited by hand. Every
figure comes from ``archbuilder.summarize``, so the output depends on nothing but the specs
and archbuilder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import archbuilder
from archbuilder.analysis.summary import Summary
from archbuilder.ir import IR, Op
from tools.docs import SPECS, markdown, regions
from tools.docs.markdown import giga, shape_text
from tools.docs.target import Output, Tree

DOC = "docs/inception-family.md"
SIZES = "sizes/"  # the prefix of each table's region
EMPTY_HEADER = "| | |"  # a two-column table of names and values: Markdown needs a header line
# The walk, in order: (spec file, what it adds, the implementation it equals).
LINEAGE = (
    ("googlenet-naive.yaml", "naive Inception", "—"),
    ("googlenet-v1-original.yaml", "GoogLeNet (v1)", "the paper's Table 1"),
    ("googlenet.yaml", "v1 with batch norm", "the article's PyTorch code"),
    ("googlenet-factorized.yaml", "5×5 factorized", "—"),
    ("bn-inception.yaml", "BN-Inception (v2)", "pretrainedmodels `bninception`"),
    ("inception-v3.yaml", "Inception-v3", "torchvision `inception_v3`"),
    ("inception-v4.yaml", "Inception-v4", "timm `inception_v4`"),
    ("inception-resnet-v2.yaml", "Inception-ResNet-v2", "timm `inception_resnet_v2`"),
    ("xception.yaml", "Xception", "Keras `Xception`; timm `legacy_xception`"),
    ("inception-next-tiny.yaml", "InceptionNeXt-T", "timm `inception_next_tiny`"),
)
# A stage whose spec is not (yet) shipped is left out of the walk.
STAGES = tuple((file, stage) for file, stage, _ in LINEAGE if (SPECS / file).is_file())
REFERENCES = {file: reference for file, _, reference in LINEAGE}


def _m(macs: int) -> str:
    return f"{giga(macs)} G"


def _rows(summary: Summary) -> list[tuple[str, str]]:
    last = [row for row in summary.rows if row.section in ("stem", "blocks")][-1]
    rows = [
        ("Input", shape_text(summary.input_shape)),
        ("Parameters", f"{summary.inference_params:,}"),
        ("MACs per image", _m(summary.inference_macs)),
    ]
    if summary.params != summary.inference_params:
        rows.append(("Parameters with the aux heads", f"{summary.params:,}"))
    blocks = [row for row in summary.rows if row.kind in ("inception", "branches")]
    if blocks:
        widest = max(blocks, key=lambda row: row.params)
        rows.append(("Multi-branch blocks", str(len(blocks))))
        rows.append(
            ("Largest block", f"`{widest.name}`: {widest.params:,} parameters, {_m(widest.macs)} MACs")
        )
    rows.append(("Last feature map", f"`{last.name}`: {shape_text(last.out_shape)}"))
    return rows


def _spec_table(file: str) -> str:
    rows = _rows(archbuilder.summarize(SPECS / file))
    return "\n".join([EMPTY_HEADER, markdown.rule(2, {1}, tight=True), *map(markdown.row, rows)]) + "\n"


def _overview() -> str:
    headers = ["Stage", "Spec", "Equals", "Input", "Parameters", "MACs per image", "Constructs", "Diagram"]
    rows = []
    for file, stage in STAGES:
        ir = archbuilder.lower(archbuilder.load_spec(SPECS / file))
        summary = archbuilder.summarize(ir)
        stem = Path(file).stem
        rows.append(
            [
                stage,
                f"[{file}](../specs/{file})",
                REFERENCES[file],
                shape_text(summary.input_shape),
                f"{summary.inference_params:,}",
                _m(summary.inference_macs),
                ", ".join(constructs(ir)),
                f"[{stem}.svg](diagrams/{stem}.svg)",
            ]
        )
    return markdown.table(headers, rows, right={4, 5}, tight=True) + "\n"


def _linear_projection(op: Op) -> bool:
    a = op.attrs
    return (
        op.kind == "conv" and a["kernel"] == (1, 1) and a["norm"] == a["activation"] == "none" and a["bias"]
    )


# (what the table says, whether an op shows it), in the order the lineage introduced them.
_CONSTRUCTS: tuple[tuple[str, Callable[[Op], bool]], ...] = (
    ("LRN", lambda op: op.kind == "lrn"),
    ("batch norm", lambda op: op.attrs.get("norm") == "batch"),
    ("ceil-mode pools", lambda op: op.kind in ("maxpool", "avgpool") and op.attrs["ceil_mode"]),
    ("pools excluding padding", lambda op: op.kind == "avgpool" and not op.attrs["count_include_pad"]),
    ("1×n / n×1 convs", lambda op: op.kind == "conv" and op.attrs["kernel"][0] != op.attrs["kernel"][1]),
    ("residual adds", lambda op: op.kind == "add"),
    ("scaled residuals", lambda op: op.kind == "add" and bool(op.attrs.get("scales"))),
    ("linear 1×1 projections", _linear_projection),
    ("separable convs", lambda op: op.kind == "separable"),
    ("depthwise convs", lambda op: op.kind == "conv" and op.attrs["groups"] == op.attrs["in_channels"] > 1),
)


def constructs(ir: IR) -> list[str]:
    """What the spec uses beyond plain convolutions, pools and concatenations, from its ops."""
    aux = {head.name for head in ir.aux_heads}
    ops = [op for op in ir.ops() if op.item not in aux]
    return [label for label, shows in _CONSTRUCTS if any(shows(op) for op in ops)] or ["—"]


def generated(what: str) -> str:
    """The body of one region: ``overview``, or a spec file's table."""
    if what == "overview":
        return _overview()
    if not (SPECS / what).is_file():
        raise ValueError(f"{DOC} has a sizes table for {what}, which is not in specs/")
    return _spec_table(what)


def tables(document: str) -> dict[str, str]:
    """The size tables as they stand in ``document``, by what they show."""
    return regions.regions(document, SIZES)


def bodies(document: str) -> dict[str, str]:
    """What each region of ``document`` should hold, by region name."""
    if not tables(document):
        raise ValueError(f"{DOC} needs at least one {begin_line('FILE')!r} … {end_line('FILE')!r} region")
    return {SIZES + what: generated(what) for what in tables(document)}


def render(document: str) -> str:
    """``document`` with every region regenerated."""
    return regions.replace(document, bodies(document), DOC)


def begin_line(what: str) -> str:
    return regions.begin_line(SIZES + what)


def end_line(what: str) -> str:
    return regions.end_line(SIZES + what)


def outputs(tree: Tree) -> list[Output]:
    return [Output(DOC, name, text) for name, text in bodies(tree.read(DOC) or "").items()]
