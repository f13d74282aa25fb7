"""Compare the IR with what torch does: every node's shape and parameters, MACs counted apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import torch
from torch import nn

from archbuilder.builder import ArchModel
from archbuilder.ir import IR


def module_path(ir: IR, op_id: str) -> str:
    """The module computing ``op_id``: its own path, or its block's for a merge op."""
    op = ir.op(op_id)
    return op_id.rsplit(".", 1)[0] if op.kind in ("concat", "add", "mul") else op_id


def run_with_hooks(model: nn.Module, x: torch.Tensor, hooks: Iterable[tuple[nn.Module, Callable]]) -> None:
    """One no-grad forward pass of ``model`` with each ``(module, forward hook)`` attached."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()


def outputs_of(
    model: nn.Module, names: list[str], x: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The outputs of the submodules ``names`` (by forward hooks, copied: a later in-place op
    may reuse a block's output) and the model's own, for ``x``."""
    caught: dict[str, torch.Tensor] = {}

    def hook(name):
        return lambda _m, _i, out: caught.__setitem__(name, out.clone())

    run_with_hooks(model, x, [(model.get_submodule(name), hook(name)) for name in names])
    with torch.no_grad():
        return caught, model(x)


def observed_shapes(model: ArchModel, ir: IR, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every IR op, recorded by forward hooks during one pass."""
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for op in ir.ops():
        if op.kind == "input":
            continue
        module = model.get_submodule(module_path(ir, op.id))

        def hook(_module, _inputs, output, op_id=op.id):
            seen[op_id] = tuple(output.shape[1:])

        hooks.append((module, hook))
    run_with_hooks(model, x, hooks)
    return seen


def counted_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs per sample, counted from the tensors torch actually produces for batch ``x``."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * kh * kw * (module.in_channels // module.groups)

    def linear_hook(module: nn.Linear, inputs, output):
        nonlocal total
        total += module.in_features * module.out_features * inputs[0].shape[0]

    hooks = [
        (m, conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    run_with_hooks(model, x, hooks)
    assert total % x.shape[0] == 0
    return total // x.shape[0]


def assert_ir_matches_torch(model: ArchModel, ir: IR, batch: int = 2) -> None:
    x = torch.randn(batch, *ir.input_shape)
    model.train()  # runs the aux heads too
    shapes = observed_shapes(model, ir, x)
    expected = {op.id: op.shape for op in ir.ops() if op.kind != "input"}
    assert shapes == expected
    for op in ir.ops():
        if op.kind in ("input", "concat", "add", "mul"):
            continue
        module = model.get_submodule(op.id)
        assert sum(p.numel() for p in module.parameters()) == op.params, op.id
    assert sum(p.numel() for p in model.parameters()) == ir.total()[0]
    assert counted_macs(model, x) == ir.total()[1]


def assert_holds_every_tensor(theirs: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> None:
    """``ours`` (a state dict) has the tensor shapes of ``theirs``, and each of their tensors
    by value: names differ between implementations, and randomized statistics make the
    values tell tensors apart."""
    assert Counter(tuple(t.shape) for t in theirs.values()) == Counter(tuple(t.shape) for t in ours.values())
    by_shape: dict[tuple, list[torch.Tensor]] = {}
    for tensor in ours.values():
        by_shape.setdefault(tuple(tensor.shape), []).append(tensor)
    for name, tensor in theirs.items():
        assert any(torch.equal(tensor, mine) for mine in by_shape[tuple(tensor.shape)]), name
