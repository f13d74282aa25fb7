"""The model ``archbuild export --dtype`` writes: bf16 (torch.export only) or int8 (QDQ).

* **bf16** — :func:`optimize_for_inference` with ``dtype=bf16``, exported by
  ``torch.export`` (``.pt2``). Not ONNX: ONNX's Conv takes bfloat16 only from opset 22, and
  onnxruntime's CPU provider has no bf16 Conv kernel ("Could not find an implementation for
  Conv(22)"), so the file would run nowhere on a CPU.
* **int8** — :func:`quantize`'s converted PT2E graph: quantize / dequantize ops around float
  ops, which ``torch.onnx`` writes as ONNX QuantizeLinear / DequantizeLinear pairs (QDQ) that
  onnxruntime fuses into int8 kernels; ``.pt2`` keeps the same graph.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from archbuilder.builder.modules import ArchModel

__all__ = ["BF16_ONNX_REASON", "EXPORT_DTYPES", "for_export"]

EXPORT_DTYPES = ("fp32", "bf16", "int8")
BF16_ONNX_REASON = (
    "bf16 exports as a torch.export program (.pt2) only: ONNX's Conv takes bfloat16 from opset 22 "
    "on, and onnxruntime's CPU provider has no bf16 Conv kernel; export int8 or fp32 to ONNX"
)


def for_export(model: ArchModel, dtype: str, calibration: Sequence[Tensor] | None = None) -> nn.Module:
    """``model`` in ``dtype`` ("fp32", "bf16", "int8"), ready for ``torch.export`` / ``torch.onnx``.

    int8 calibrates on ``calibration`` (default: :func:`calibration_batches`, uniform noise).
    The result carries ``spec`` (the exporters take the input shape from it).
    """
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(EXPORT_DTYPES)}, not {dtype!r}")
    if dtype == "fp32":
        return model
    if dtype == "bf16":
        from archbuilder.builder.optimize import optimize_for_inference

        # oneDNN's packed weights cannot be exported: plain convs, in bf16.
        exported = optimize_for_inference(model, dtype="bf16", fuse_activations=False)
    else:
        from archbuilder.builder.quantize import calibration_batches, quantize

        batches = calibration if calibration is not None else calibration_batches(model)
        exported = quantize(model, batches, compile=False).program
    exported.spec = model.spec
    return exported
