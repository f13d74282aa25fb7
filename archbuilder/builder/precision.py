"""Reduced precision for ``optimize_for_inference``: which layers run in bf16, and the casts.

A top-level layer (a stem, blocks or head entry) runs in bfloat16 unless the precision
policy keeps it in float32. The policy is data: ``precision.keep_fp32`` in the spec, or the
``keep_fp32`` argument; without either, the head's linear layers (the classifier) stay
float32. What stays float32 regardless, and why:

* **the classifier** (by default): under 0.1% of GoogLeNet's FLOPs, and logits rounded to
  bf16's 8 significant bits can swap two near-equal classes;
* **local response norm, softmax, log-softmax**: sums of squares raised to a power and
  exponentials, where bf16's rounding grows; they run in float32 wherever they are;
* **batch norm left unfolded** (``fold_bn=False``): its statistics stay float32 (PyTorch's
  CPU batch norm takes bf16 input with float32 parameters);
* **the output**: cast to ``output_dtype``, float32 by default.

Convs accumulate in float32 inside oneDNN whatever their dtype; parameter-free layers (pools,
flatten) run in the dtype they receive, so casts sit only where the dtype changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from archbuilder.core.errors import did_you_mean

__all__ = ["DTYPES", "Cast", "Float32", "apply_precision", "check_dtype", "compile_frozen", "kept_in_fp32"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SENSITIVE = (nn.LocalResponseNorm, nn.Softmax, nn.LogSoftmax)  # always float32


class Cast(nn.Module):
    """Converts its input to ``dtype`` (keeping the memory format)."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return x.to(self.dtype)

    def extra_repr(self) -> str:
        return str(self.dtype).removeprefix("torch.")


class Float32(nn.Module):
    """Runs ``module`` in float32 and returns its output in the input's dtype."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x.float()).to(x.dtype)


def compile_frozen(
    module: nn.Module, *, cpp_wrapper: bool = False, inductor: dict[str, object] | None = None
) -> Callable[[Tensor], Tensor]:
    """``torch.compile(module)`` with inductor's weight freezing, for inference.

    Frozen weights are constants, which inductor folds and prepacks for oneDNN (bf16 convs,
    int8 convs) and around which it generates its own pool and concat loops. Freezing is read
    when dynamo traces, at the first call for each input shape, so each call sets it.
    ``cpp_wrapper=True`` has inductor call its kernels from generated C++ instead of Python
    (less overhead per kernel, a longer first compile). ``inductor`` adds other inductor
    settings for this model's compiles only.
    """
    compiled = torch.compile(module, dynamic=False)
    settings = {"freezing": True, "cpp_wrapper": cpp_wrapper, **(inductor or {})}

    def run(x: Tensor) -> Tensor:
        with torch._inductor.config.patch(settings), torch.no_grad():
            return compiled(x)

    return run


def check_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``dtype`` as a torch dtype that ``optimize_for_inference`` supports (or ValueError)."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        return DTYPES[dtype]
    if dtype not in DTYPES.values():
        raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, not {dtype}")
    return dtype


def kept_in_fp32(model: nn.Module, keep_fp32: Iterable[str] | None = None) -> frozenset[str]:
    """The top-level layer names of ``model`` (an ArchModel) that stay float32.

    ``keep_fp32`` wins; else the spec's ``precision.keep_fp32``; else the head's linear
    layers. A repeated layer's name covers its copies (``name_1`` … ``name_n``).
    """
    body: tuple[str, ...] = model.body_names
    spec = getattr(model, "spec", None)
    if keep_fp32 is None and spec is not None and spec.precision is not None:
        keep_fp32 = spec.precision.keep_fp32
    if keep_fp32 is None:
        head = {layer.name for layer in spec.head if layer.kind == "linear"} if spec is not None else set()
        return frozenset(name for name in body if name in head or _group_of(name) in head)
    if isinstance(keep_fp32, str):
        raise TypeError("keep_fp32 is a list of layer names, not one string")
    kept = set()
    for name in keep_fp32:
        matches = [entry for entry in body if entry == name or _group_of(entry) == name]
        if not matches:
            raise ValueError(f"keep_fp32: '{name}' names no top-level layer{did_you_mean(name, body)}")
        kept.update(matches)
    return frozenset(kept)


def _group_of(name: str) -> str | None:
    """``conv`` for ``conv_3`` (a copy of a repeated layer), else None."""
    found = re.fullmatch(r"(.+)_\d+", name)
    return found.group(1) if found else None


def apply_precision(
    layers: Sequence[tuple[str, nn.Module]],
    dtype: torch.dtype,
    keep: frozenset[str],
    output_dtype: torch.dtype | None,
) -> list[nn.Module]:
    """The top-level ``layers`` converted to ``dtype`` (those in ``keep`` to float32), with a
    :class:`Cast` wherever the dtype changes, starting from a float32 input."""
    current = torch.float32
    converted: list[nn.Module] = []
    for name, module in layers:
        wanted = torch.float32 if name in keep or isinstance(module, SENSITIVE) else dtype
        if _has_state(module):
            if wanted != torch.float32:
                module = _to_dtype(module, wanted)
            if wanted != current:
                converted.append(Cast(wanted))
                current = wanted
        converted.append(module)
    if output_dtype is not None and output_dtype != current:
        converted.append(Cast(output_dtype))
    return converted


def _has_state(module: nn.Module) -> bool:
    """Whether the layer has weights (its dtype matters) or a sensitive op inside it."""
    return any(True for _ in module.parameters()) or any(
        True for _ in module.buffers()
    ) or any(isinstance(m, SENSITIVE) for m in module.modules())  # fmt: skip


def _to_dtype(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``module`` in ``dtype``, its sensitive ops wrapped in :class:`Float32`, batch norm kept float32."""
    if isinstance(module, SENSITIVE):
        return Float32(module)
    for name, child in module.named_children():
        setattr(module, name, _to_dtype(child, dtype))
    if isinstance(module, nn.modules.batchnorm._BatchNorm | Float32):
        return module
    for key, tensor in list(module._parameters.items()) + list(module._buffers.items()):
        if tensor is not None and tensor.is_floating_point():
            converted = tensor.detach().to(dtype)
            if key in module._parameters:
                module._parameters[key] = nn.Parameter(converted, requires_grad=False)
            else:
                module._buffers[key] = converted
    return module
