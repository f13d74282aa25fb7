"""Every target ``python -m tools.docs`` knows: what it writes, and the function that renders it."""

from __future__ import annotations

from tools.docs import diagrams, families, inception_family, performance, spec_reference, variants
from tools.docs.target import Target

TARGETS: tuple[Target, ...] = (
    Target("spec", "docs/spec.md: the layer kinds and each spec model's field table", spec_reference.outputs),
    Target("variants", "docs/variants.md: the GoogLeNet variants' tables", variants.outputs),
    Target(
        "inception-family", "docs/inception-family.md: the lineage's size tables", inception_family.outputs
    ),
    Target("families", "docs/families.md (whole): each family against torchvision", families.outputs),
    Target(
        "performance",
        "docs/performance.md (whole), README.md and docs/experiments.md: figures from bench/results/",
        performance.outputs,
    ),
    Target(
        "diagrams",
        "docs/diagrams/*.svg (whole): each shipped spec drawn, a compare, the paper theme",
        diagrams.outputs,
        slow=True,
    ),
)
NAMES = tuple(target.name for target in TARGETS)
