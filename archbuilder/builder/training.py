"""``optimize_for_training``: a built model reshaped to train faster, on the same parameters.

Unlike ``optimize_for_inference``, which makes a frozen copy, the training model *shares*
every parameter and buffer with the model it is made from, under the same ``state_dict``
keys: optimizers, ``save_checkpoint``, ``load_weights``, ``reset_classifier`` and
``DistributedDataParallel`` work on it unchanged, and a checkpoint of one loads into the
other. The steps, each of which can be switched off (``bench/train_step.py --ablation``
measures what each gives):

* **channels_last** — weights and activations in NHWC, the layout oneDNN's convs and torch's
  CPU max pools are fastest in (the max pools about 3× on the CPU the benchmarks ran on);
* **fuse_siblings** — the conv units that open different branches of a block and read its
  input with the same settings (Inception's 1×1 conv and 1×1 reductions) run as one conv,
  batch norm and activation over their concatenated weights
  (:mod:`archbuilder.builder.training_siblings`); gradients split back to each unit's own
  parameters;
* **dtype** — ``"bf16"`` or ``"fp16"`` runs the model under ``torch.autocast``, except the
  layers ``keep_fp32`` names (default: the spec's ``precision.keep_fp32``, else the
  classifier), which run in float32; parameters, batch norm statistics, gradients and the
  returned logits stay float32. fp16 needs a ``torch.amp.GradScaler`` in the training loop;
* **recompute_pools** (off by default) — max pools keep no argmax indices for the backward
  pass and find them again there (:mod:`archbuilder.builder.training_pools`): less memory,
  one more pool forward per step;
* **checkpoint_blocks** — the chosen top-level blocks (``"4a:4e"``) keep only their inputs
  for the backward pass and compute again there (:mod:`archbuilder.builder.training_checkpoint`):
  larger batches in the same memory, for about one more forward pass of those blocks.

``torch.compile`` the returned model for inductor's fusions on top; keep the uncompiled
model for ``state_dict`` and checkpoints (a compiled module's keys gain a prefix).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from archbuilder.builder.modules import ArchModel, ModelOutputs, ParallelBlock
from archbuilder.builder.precision import kept_in_fp32
from archbuilder.builder.training_checkpoint import checkpointed, chosen_blocks
from archbuilder.builder.training_pools import LeanMaxPool2d
from archbuilder.builder.training_siblings import SiblingParallelBlock, fused_siblings

__all__ = ["TrainingModel", "optimize_for_training"]

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingModel(ArchModel):
    """An :class:`ArchModel` that trains faster; made by :func:`optimize_for_training`.

    ``steps`` says which steps are on. Outputs are float32 whatever ``dtype`` computes in.
    """

    def __init__(
        self,
        body: Sequence[tuple[str, nn.Module]],
        aux_heads: Sequence[tuple[str, str, float, nn.Module]],
        *,
        channels_last: bool,
        dtype: torch.dtype | None,
        keep_fp32: frozenset[str],
        checkpoint_blocks: frozenset[str],
        fuse_siblings: bool,
        recompute_pools: bool,
    ):
        super().__init__(body, aux_heads)
        self.channels_last = channels_last
        self.dtype = dtype
        self.keep_fp32 = keep_fp32 if dtype is not None else frozenset()
        self.checkpoint_blocks = checkpoint_blocks
        self.steps = {
            "channels_last": channels_last,
            "fuse_siblings": fuse_siblings,
            "recompute_pools": recompute_pools,
            "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
            "checkpoint_blocks": sorted(checkpoint_blocks, key=self.body_names.index),
        }

    def forward(self, x: Tensor) -> Tensor | ModelOutputs:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with_aux = self.training and bool(self.aux_weights)
        aux: list[Tensor] = []
        with self._autocast(x):
            for name in self.body_names:
                x = self._layer(name, x)
                if with_aux and name in self.aux_taps:
                    aux.extend(_float32(self._modules[head](x)) for head in self.aux_taps[name])
        x = _float32(x)
        return ModelOutputs(x, tuple(aux)) if with_aux else x

    def _autocast(self, x: Tensor) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(x.device.type, dtype=self.dtype)

    def _layer(self, name: str, x: Tensor) -> Tensor:
        module = self._modules[name]
        if name in self.keep_fp32:
            with torch.autocast(x.device.type, enabled=False):
                return module(_float32(x))
        if name in self.checkpoint_blocks and self.training and torch.is_grad_enabled():
            return checkpointed(module, x)
        return module(x)


def optimize_for_training(
    model: ArchModel,
    *,
    channels_last: bool = True,
    fuse_siblings: bool = True,
    dtype: str | torch.dtype | None = None,
    keep_fp32: Sequence[str] | None = None,
    checkpoint_blocks: str | Sequence[str] | None = None,
    recompute_pools: bool = False,
) -> TrainingModel:
    """A :class:`TrainingModel` computing what ``model`` computes, sharing its parameters.

    The result has ``model``'s parameters and buffers (the same tensors, under the same
    ``state_dict`` keys), its spec, aux heads and training mode; training either trains both.
    ``channels_last`` converts the shared 4-d weights to NHWC in place (``model`` still computes
    the same function). ``dtype``: None (float32), ``"bf16"`` or ``"fp16"`` autocast, with the
    layers ``keep_fp32`` names (default: the spec's ``precision.keep_fp32``, else the
    classifier) in float32. ``checkpoint_blocks``: top-level layers whose activations are
    recomputed in the backward pass instead of stored, as ``"4a:4e"`` (a range, ends
    included), ``"4a,4d"`` or a list. ``recompute_pools``: max pools store no argmax indices.
    See :mod:`archbuilder.builder.training` for each step.
    """
    if not isinstance(model, ArchModel):
        raise TypeError(
            f"optimize_for_training takes a model made by archbuilder.build, not {type(model).__name__}"
        )
    autocast_dtype = _autocast_dtype(dtype)
    keep = kept_in_fp32(model, keep_fp32) if autocast_dtype is not None else frozenset()
    checkpointed_blocks = chosen_blocks(checkpoint_blocks, model.body_names)
    rewrite = _Rewriter(fuse_siblings=fuse_siblings, recompute_pools=recompute_pools)
    body = [(name, rewrite(model._modules[name])) for name in model.body_names]
    training = TrainingModel(
        body,
        _aux_heads(model),
        channels_last=channels_last,
        dtype=autocast_dtype,
        keep_fp32=keep,
        checkpoint_blocks=checkpointed_blocks,
        fuse_siblings=fuse_siblings,
        recompute_pools=recompute_pools,
    )
    if hasattr(model, "spec"):
        training.spec = model.spec
    training.train(model.training)
    if channels_last:
        training.to(memory_format=torch.channels_last)
    return training


def _float32(x: Tensor) -> Tensor:
    """``x`` in float32 if autocast left it in a lower precision, else as it is."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _autocast_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or dtype in ("fp32", torch.float32):
        return None
    if isinstance(dtype, str):
        if dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"dtype must be None, 'bf16' or 'fp16', not {dtype!r}")
        return AUTOCAST_DTYPES[dtype]
    if dtype not in AUTOCAST_DTYPES.values():
        raise ValueError(f"dtype must be None, torch.bfloat16 or torch.float16, not {dtype}")
    return dtype


def _aux_heads(model: ArchModel) -> list[tuple[str, str, float, nn.Module]]:
    """The aux heads as ``ArchModel`` takes them, in the model's own child order."""
    taps = {head: tap for tap, heads in model.aux_taps.items() for head in heads}
    weights = dict(zip(model.aux_names, model.aux_weights))
    return [
        (name, taps[name], weights[name], module)
        for name, module in model.named_children()
        if name not in model.body_names
    ]


class _Rewriter:
    """Rewrites a top-level layer: each multi-branch block with sibling conv units becomes a
    :class:`SiblingParallelBlock` over the same branches (``fuse_siblings``), each max pool a
    :class:`LeanMaxPool2d` (``recompute_pools``). Containers on the way are new; every other
    module is the original's own (shared, not copied)."""

    def __init__(self, *, fuse_siblings: bool, recompute_pools: bool):
        self.fuse_siblings = fuse_siblings
        self.recompute_pools = recompute_pools

    def __call__(self, module: nn.Module) -> nn.Module:
        if isinstance(module, ParallelBlock):
            branches = [(name, self(branch)) for name, branch in module.named_children()]
            if self.fuse_siblings and fused_siblings([branch for _, branch in branches]):
                return SiblingParallelBlock.of(module, branches)
            if all(new is old for (_, new), old in zip(branches, module.children())):
                return module
            rebuilt = ParallelBlock(branches, module.merge, module.scales, module.activation, module.shuffle)
            return rebuilt.train(module.training)
        if type(module) is nn.Sequential:
            children = [(name, self(child)) for name, child in module.named_children()]
            if all(new is old for (_, new), old in zip(children, module.children())):
                return module
            return nn.Sequential(OrderedDict(children)).train(module.training)
        if self.recompute_pools and type(module) is nn.MaxPool2d and not module.return_indices:
            return LeanMaxPool2d.replacing(module).train(module.training)
        return module
