"""The merge that ends a multi-branch block: its output shape and its op's attributes, with
what is wrong with them. Pure rules on the block and its branch shapes; lowering records the
problems at the block's place in the spec."""

from __future__ import annotations

from collections.abc import Sequence

from archbuilder.core.errors import KeyPath
from archbuilder.ir.graph import Shape
from archbuilder.ir.ops import check_shuffle
from archbuilder.spec.blocks import Branches, Inception

__all__ = ["merge_attrs", "merged_shape"]


def merged_shape(
    block_id: str, merge: str, names: Sequence[str], shapes: Sequence[Shape]
) -> tuple[Shape, str | None]:
    """The shape ``merge`` (concat, add or mul) makes of the branch ``shapes``, and what is
    wrong when they cannot merge that way (the shape is then a stand-in, to check on)."""
    listing = ", ".join(f"{name} {'×'.join(map(str, s))}" for name, s in zip(names, shapes))
    if merge == "add":
        problem = (
            f"{block_id}: add-merge needs equal branch shapes, got {listing}"
            if len(set(shapes)) > 1
            else None
        )
        return shapes[0], problem
    if merge == "mul":
        merged = broadcast(list(shapes))
        if merged is None:
            message = "mul-merge needs equal channels and spatial sizes equal or 1 (broadcast)"
            return shapes[0], f"{block_id}: {message}, got {listing}"
        return merged, None
    problem = None
    if len({s[1:] for s in shapes}) > 1:
        problem = f"{block_id}: concat needs equal spatial sizes in every branch, got {listing}"
    return (sum(s[0] for s in shapes), *shapes[0][1:]), problem


def merge_attrs(
    block: Inception | Branches, inputs: tuple[str, ...], widths: Sequence[int]
) -> tuple[dict, list[tuple[KeyPath, str]]]:
    """The merge op's attributes: its ``inputs`` (whose channel counts are ``widths``), and the
    branch scales, the activation after it and its channel shuffle where the block sets them;
    and the problems, each at a key path under the block's."""
    attrs: dict = {"inputs": inputs}
    problems: list[tuple[KeyPath, str]] = []
    if isinstance(block, Inception):
        return attrs, problems
    scales = tuple(branch.scale for branch in block.branches)
    if any(scale != 1 for scale in scales):
        if block.merge != "add":
            message = "scale multiplies a branch before an add merge; this block concatenates"
            problems += [
                (("branches", index, "scale"), message) for index, scale in enumerate(scales) if scale != 1
            ]
        attrs["scales"] = scales
    if block.activation not in (None, "none"):
        attrs["activation"] = block.activation
    if block.shuffle is not None:  # a channel shuffle of the merged output, last
        attrs["shuffle"] = block.shuffle
        problem = check_shuffle(block.shuffle, sum(widths) if block.merge == "concat" else widths[0])
        if problem:
            problems.append((("shuffle",), problem))
    return attrs, problems


def broadcast(shapes: list[Shape]) -> Shape | None:
    """The shapes' product shape, or None when they do not broadcast: equal ranks and
    channels, and each spatial size equal to the largest or 1 (a C×1×1 gate over C×H×W)."""
    if len({len(shape) for shape in shapes}) != 1:
        return None
    merged = tuple(max(sizes) for sizes in zip(*shapes))
    for shape in shapes:
        if shape[0] != merged[0] or any(size not in (1, largest) for size, largest in zip(shape, merged)):
            return None
    return merged
