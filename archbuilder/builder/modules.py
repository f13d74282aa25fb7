"""The torch modules a spec is built from: the model, multi-branch blocks, outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archbuilder.analysis.features import check_taps
from archbuilder.builder.classifier import replace_classifier
from archbuilder.builder.layers import channel_shuffle
from archbuilder.spec import ArchSpec

__all__ = ["ArchModel", "ModelOutputs", "ParallelBlock"]


class ModelOutputs(NamedTuple):
    """Training-mode outputs of a model with aux heads: main logits, aux logits in tap order."""

    logits: Tensor
    aux: tuple[Tensor, ...]


def merge_branches(
    outputs: Sequence[Tensor],
    merge: str,
    scales: Sequence[float] | None = None,
    activation: Callable[[Tensor], Tensor] | None = None,
    shuffle: int | None = None,
    block_input: Tensor | None = None,
) -> Tensor:
    """Branch outputs joined by channel concatenation, a (scaled) sum or a broadcasting
    product, then activated, then channel-shuffled in ``shuffle`` groups.

    Without autograd, an unscaled sum accumulates into a branch's own output when one owns its
    memory (shares it with neither ``block_input`` nor another output), and a ReLU after the
    merge runs in place on a tensor the block owns, as torchvision's ``out += identity;
    relu(out)`` does: a residual block then allocates nothing for its sum and activation.
    """
    if merge == "concat":
        merged = outputs[0] if len(outputs) == 1 else torch.cat(list(outputs), dim=1)
    elif merge == "mul":
        merged = outputs[0]
        for output in outputs[1:]:
            merged = merged * output
    elif scales is None and block_input is not None and _eager_inference():
        merged = _sum_in_place(outputs, block_input)
    else:
        scales = scales or (1.0,) * len(outputs)
        merged = outputs[0] if scales[0] == 1 else outputs[0] * scales[0]
        for output, scale in zip(outputs[1:], scales[1:]):
            merged = merged + (output if scale == 1 else output * scale)
    if activation is not None:
        in_place = _IN_PLACE.get(activation)
        if in_place is not None and block_input is not None and _eager_inference():
            # the merged tensor is the block's own unless it is (a view of) the block input
            owned = merged.untyped_storage().data_ptr() != block_input.untyped_storage().data_ptr()
            merged = in_place(merged) if owned else activation(merged)
        else:
            merged = activation(merged)
    return merged if shuffle is None else channel_shuffle(merged, shuffle)


def _eager_inference() -> bool:
    """No autograd and no tracer (torch.compile / torch.export see fake tensors without storage)."""
    return not torch.is_grad_enabled() and not torch.compiler.is_compiling()


_IN_PLACE: dict[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]] = {F.relu: torch.relu_}


def _sum_in_place(outputs: Sequence[Tensor], block_input: Tensor) -> Tensor:
    storages = [output.untyped_storage().data_ptr() for output in outputs]
    taken = block_input.untyped_storage().data_ptr()
    owner = next((i for i, ptr in enumerate(storages) if ptr != taken and storages.count(ptr) == 1), None)
    if owner is None:
        merged = outputs[0]
        for output in outputs[1:]:
            merged = merged + output
        return merged
    merged = outputs[owner]
    for index, output in enumerate(outputs):
        if index != owner:
            merged.add_(output)
    return merged


class ParallelBlock(nn.Module):
    """Branches that read the same input, merged by channel concatenation or by sum.

    ``scales`` (add only) multiply each branch's output before the sum; ``activation`` is
    applied to the merged output, and then a channel shuffle in ``shuffle`` groups. None of
    them has parameters or becomes a child module, so the children (and state-dict names) are
    the branches alone.
    """

    def __init__(
        self,
        branches: Sequence[tuple[str, nn.Module]],
        merge: str,
        scales: Sequence[float] | None = None,
        activation: Callable[[Tensor], Tensor] | None = None,
        shuffle: int | None = None,
    ):
        super().__init__()
        if merge not in ("concat", "add", "mul"):
            raise ValueError(f"merge must be 'concat', 'add' or 'mul', not {merge!r}")
        for name, branch in branches:
            self.add_module(name, branch)
        self.merge = merge
        self.scales = tuple(scales) if scales is not None and any(s != 1 for s in scales) else None
        if self.scales is not None and (merge != "add" or len(self.scales) != len(branches)):
            raise ValueError("scales need an add merge and one scale per branch")
        self.activation = activation
        self.shuffle = shuffle

    def forward(self, x: Tensor) -> Tensor:
        outputs = [branch(x) for branch in self.children()]
        return merge_branches(outputs, self.merge, self.scales, self.activation, self.shuffle, x)

    def extra_repr(self) -> str:
        scales = f", scales={self.scales}" if self.scales else ""
        activation = (
            f", activation={getattr(self.activation, '__name__', self.activation)}" if self.activation else ""
        )
        shuffle = f", shuffle={self.shuffle}" if self.shuffle else ""
        return f"merge={self.merge}{scales}{activation}{shuffle}"


class ArchModel(nn.Module):
    """A network built from a spec. Children are the spec's top-level layers and aux heads, by name.

    Eval mode (or no aux heads) returns the logits tensor; training mode with aux heads
    returns :class:`ModelOutputs`. Its ``aux`` is in tap order (the order the heads run),
    which ``aux_names`` and ``aux_weights`` follow.
    """

    def __init__(
        self,
        body: Sequence[tuple[str, nn.Module]],
        aux_heads: Sequence[tuple[str, str, float, nn.Module]] = (),
    ):
        super().__init__()
        for name, module in body:
            self.add_module(name, module)
        for name, _, _, module in aux_heads:
            self.add_module(name, module)
        self.body_names: tuple[str, ...] = tuple(name for name, _ in body)  # the top-level entries, in order
        order = {name: index for index, name in enumerate(self.body_names)}
        tapped = sorted(aux_heads, key=lambda head: order[head[1]])  # stable: spec order per tap
        self.aux_taps: dict[str, tuple[str, ...]] = {}  # body entry -> the aux heads tapped after it
        for name, tap, _, _ in tapped:
            self.aux_taps[tap] = (*self.aux_taps.get(tap, ()), name)
        self.aux_names: tuple[str, ...] = tuple(name for name, _, _, _ in tapped)
        self.aux_weights: tuple[float, ...] = tuple(weight for _, _, weight, _ in tapped)

    def forward(self, x: Tensor) -> Tensor | ModelOutputs:
        with_aux = self.training and bool(self.aux_weights)
        aux: list[Tensor] = []
        for name in self.body_names:
            x = self._modules[name](x)
            if with_aux and name in self.aux_taps:
                aux.extend(self._modules[head](x) for head in self.aux_taps[name])
        return ModelOutputs(x, tuple(aux)) if with_aux else x

    def compute_loss(
        self,
        outputs: Tensor | ModelOutputs,
        target: Tensor,
        criterion: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    ) -> Tensor:
        """Main loss plus each aux loss times its spec ``loss_weight`` (main loss alone in eval)."""
        if isinstance(outputs, Tensor):
            return criterion(outputs, target)
        loss = criterion(outputs.logits, target)
        for weight, logits in zip(self.aux_weights, outputs.aux):
            loss = loss + weight * criterion(logits, target)
        return loss

    def features(self, x: Tensor, at: str | Sequence[str]) -> dict[str, Tensor]:
        """The outputs of the top-level entries named in ``at``, by name, in the order asked.

        Runs the network only up to the last of them; aux heads never run. Batch norm and
        dropout follow the model's mode, as in ``forward``.
        """
        names = check_taps(at, self.body_names)
        wanted = set(names)
        stop = max(self.body_names.index(name) for name in names)
        found: dict[str, Tensor] = {}
        for name in self.body_names[: stop + 1]:
            x = self._modules[name](x)
            if name in wanted:
                found[name] = x
        return {name: found[name] for name in names}

    def reset_classifier(self, num_classes: int) -> None:
        """Give the model fresh classifier layers for ``num_classes``; see
        :func:`archbuilder.builder.finetune.reset_classifier`."""
        spec = getattr(self, "spec", None)
        if not isinstance(spec, ArchSpec):
            raise TypeError(
                "reset_classifier needs a model made by archbuilder.build (an ArchModel with .spec)"
            )
        self.spec = replace_classifier(self, spec, num_classes)
