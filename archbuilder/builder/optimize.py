"""``optimize_for_inference``: an eval-only copy of a built model, rewritten for speed.

A spec-built model has a known structure: conv units (conv, batch norm, activation) and
multi-branch blocks whose branches all read the block's input. The rewrite uses it:

* **fold_bn** — each batch norm is folded into the conv before it (new weight and bias), a
  standalone batch norm into an unpadded conv right after it, and a layer scale into the conv
  before it when no activation comes between;
* **fuse_siblings** — convs that open different branches of one block and have the same
  kernel, stride, padding and activation (Inception's 1×1 conv and its two 1×1 reductions)
  become one conv, whose output is split among the branches;
* **channels_last** — weights and activations in NHWC, the layout oneDNN's kernels prefer;
* **fuse_activations** — on the CPU, conv, bias and activation run as one oneDNN call, with
  the weight reordered once per input shape into oneDNN's blocked layout instead of at every
  call;
* **separable_pools** — stride-1 max pools (Inception's pool branches) run as separable maxima
  over strided views, without the argmax indices torch's eager pool always computes
  (:mod:`archbuilder.builder.pooling`); exact. Off by default: on the 2-core machine the
  benchmarks ran on it was slower at batch 1 and no faster at batch 8 (docs/performance.md);
* **dtype** — ``torch.bfloat16`` converts weights and activations to bf16 except where the
  precision policy keeps float32 (:mod:`archbuilder.builder.precision` says which and why).
  On a CPU whose oneDNN has no bf16 convs (AVX2 without AVX-512), each conv computes in
  float32 from the bf16 values and rounds its output to bf16
  (:mod:`archbuilder.builder.precision_cpu`).

Dropout, drop path and the aux heads, which do nothing in eval mode, are left out. Each step
can be switched off, to measure what it contributes (``bench/inference.py --ablation``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from archbuilder.builder import precision_cpu
from archbuilder.builder.inference_modules import FusedConv, InferenceModel, InferenceParallel, enable_onednn
from archbuilder.builder.modules import ArchModel
from archbuilder.builder.precision import apply_precision, check_dtype, kept_in_fp32
from archbuilder.builder.rewrite import Rewriter, fold_neighbours, without_identities

__all__ = ["FusedConv", "InferenceModel", "InferenceParallel", "optimize_for_inference"]


def optimize_for_inference(
    model: ArchModel,
    *,
    fold_bn: bool = True,
    fuse_siblings: bool = True,
    channels_last: bool = True,
    fuse_activations: bool = True,
    separable_pools: bool = False,
    input_shape: Sequence[int] | None = None,
    dtype: torch.dtype | str = torch.float32,
    keep_fp32: Sequence[str] | None = None,
    output_dtype: torch.dtype | None = torch.float32,
) -> InferenceModel:
    """An eval-only copy of ``model`` computing the same logits faster; ``model`` is untouched.

    Optimize on the device the copy will run on; the copy is frozen (its weights are packed).
    oneDNN weights are packed for ``input_shape`` (N, C, H, W; default: batch 8 at the spec's
    input size) here, and for any other shape on its first call. Each step can be switched
    off (see the module docstring). ``dtype="bf16"`` (or ``torch.bfloat16``) runs the layers
    in bf16 except those ``keep_fp32`` names (default: the spec's ``precision.keep_fp32``, else
    the classifier); the logits come out as ``output_dtype`` (None: as computed).
    """
    if not isinstance(model, ArchModel):
        raise TypeError(
            f"optimize_for_inference takes a model made by archbuilder.build, not {type(model).__name__}"
        )
    dtype = check_dtype(dtype)
    keep = kept_in_fp32(model, keep_fp32)  # before any work: a bad name fails fast
    rewriter = Rewriter(fold_bn=fold_bn, fuse_siblings=fuse_siblings, separable_pools=separable_pools)
    with torch.no_grad():
        layers = [(name, rewriter.rewrite(model.get_submodule(name))) for name in model.body_names]  # no aux
        if fold_bn:
            layers = fold_neighbours(layers)
        if dtype != torch.float32:
            precision_cpu.warn_if_not_accelerated("bf16", next(model.parameters()).device)
        body = without_identities(nn.Sequential(*apply_precision(layers, dtype, keep, output_dtype)))
        steps = {
            "fold_bn": fold_bn,
            "fuse_siblings": fuse_siblings,
            "channels_last": channels_last,
            "fuse_activations": fuse_activations,
            "separable_pools": separable_pools,
            "bf16": dtype == torch.bfloat16,
        }
        optimized = InferenceModel(body, steps).eval()
        if dtype == torch.bfloat16 and not precision_cpu.cpu_support().onednn_bf16:
            for conv in optimized.modules():
                if isinstance(conv, FusedConv) and conv.weight.dtype == torch.bfloat16:
                    conv.compute_in_float32()
        if channels_last:
            optimized = optimized.to(memory_format=torch.channels_last)
        if fuse_activations:
            enable_onednn(optimized, input_shape or _default_input_shape(model))
    return optimized


def _default_input_shape(model: ArchModel) -> tuple[int, ...]:
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("the model has no spec attached; pass input_shape=(N, C, H, W)")
    return (8, spec.input.channels, spec.input.height, spec.input.width)
