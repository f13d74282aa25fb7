"""Activation checkpointing of chosen top-level blocks, with batch norm's running statistics
updated once per step.

A checkpointed block keeps only its input for the backward pass and runs its forward again
there (``torch.utils.checkpoint``, non-reentrant, with the random state of the first run, so
dropout and drop path draw the same masks). Run again as it is, every batch norm in the block
would update its running statistics a second time; during the recomputation they are frozen
(momentum 0, the batch counter restored), so the statistics, the outputs and the gradients
are those of the plain model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from archbuilder.core.errors import did_you_mean

__all__ = ["checkpointed", "chosen_blocks"]


def chosen_blocks(names: str | Sequence[str] | None, body: Sequence[str]) -> frozenset[str]:
    """The top-level layer names that ``names`` chooses: ``"4a:4e"`` (a range in the model's
    order, both ends included), ``"4a,4b"``, or a list of names and ranges."""
    if names is None:
        return frozenset()
    parts = names.split(",") if isinstance(names, str) else list(names)
    chosen: set[str] = set()
    for part in (part.strip() for part in parts):
        start, colon, stop = part.partition(":")
        first, last = _index(start, body), _index(stop if colon else start, body)
        if last < first:
            raise ValueError(f"checkpoint_blocks: '{part}' runs backwards ('{stop}' comes before '{start}')")
        chosen.update(body[first : last + 1])
    return frozenset(chosen)


def _index(name: str, body: Sequence[str]) -> int:
    if name not in body:
        raise ValueError(f"checkpoint_blocks: '{name}' names no top-level layer{did_you_mean(name, body)}")
    return body.index(name)


def checkpointed(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)``, its activations recomputed in the backward pass instead of stored."""
    if torch.compiler.is_compiling():  # the partitioner recomputes; statistics update once
        return checkpoint(module, x, use_reentrant=False)
    return checkpoint(
        module,
        x,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _frozen_statistics(module)),
    )


@contextlib.contextmanager
def _frozen_statistics(module: nn.Module) -> Iterator[None]:
    """Batch norms in ``module`` leave their running statistics and batch counts as they are."""
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [(norm.momentum, norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        with torch.no_grad():
            for norm, (momentum, count) in zip(norms, saved):
                norm.momentum = momentum
                norm.num_batches_tracked.copy_(count)
