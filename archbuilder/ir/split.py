"""Channel-split blocks: the slice of the input channels each branch of a ``split: true``
block reads. Pure arithmetic on the spec's sizes; lowering turns the slices into ops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SliceProblem", "channel_slices"]


@dataclass(frozen=True)
class SliceProblem:
    """What is wrong, and where: ``branch`` is the branch's index (None: the block's ``split``)."""

    branch: int | None
    message: str


def _count(size: int | float | str, channels: int) -> int:
    """A slice size as a channel count: counts as written, ratios rounded down (as timm's
    ``int(in_chs * ratio)``)."""
    if isinstance(size, int):
        return size
    if isinstance(size, str):
        numerator, denominator = (int(part) for part in size.split("/"))
        return channels * numerator // denominator
    return int(channels * size)


def channel_slices(
    sizes: Sequence[int | float | str | None], channels: int
) -> tuple[list[tuple[int, int]], list[SliceProblem]]:
    """``(start, count)`` of each branch's slice of ``channels`` input channels, in order, and
    the problems found (no slices when there are any)."""
    problems: list[SliceProblem] = []
    for index, size in enumerate(sizes):
        if size is None:
            problems.append(
                SliceProblem(index, "a branch of a split block needs channels: (a count, a ratio or rest)")
            )
        elif isinstance(size, str) and size != "rest" and _count(size, 1) >= 1:
            problems.append(SliceProblem(index, f"channels: {size} is not a fraction below 1"))
    rests = [index for index, size in enumerate(sizes) if size == "rest"]
    for index in rests[1:]:
        problems.append(SliceProblem(index, "only one branch can take the rest of the channels"))
    if problems:
        return [], problems
    counts = [None if size == "rest" else _count(size, channels) for size in sizes]
    for index, (size, count) in enumerate(zip(sizes, counts)):
        if count is not None and count < 1:
            problems.append(
                SliceProblem(index, f"channels: {size} of {channels} input channels is no channel at all")
            )
    taken = sum(count for count in counts if count is not None)
    listing = " + ".join(str(count) for count in counts if count is not None)
    if rests and taken >= channels:
        problems.append(
            SliceProblem(
                rests[0], f"the other branches take {listing} of {channels} channels, leaving none for rest"
            )
        )
    elif not rests and taken != channels:
        problems.append(
            SliceProblem(
                None,
                f"the slices take {listing} = {taken} channels but the input has {channels}; "
                "make them add up, or give one branch channels: rest",
            )
        )
    if problems:
        return [], problems
    slices, start = [], 0
    for count in counts:
        width = channels - taken if count is None else count
        slices.append((start, width))
        start += width
    return slices, []
