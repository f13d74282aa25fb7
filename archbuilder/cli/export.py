"""``export``: the eval-mode model as an ONNX file or a torch.export program."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archbuilder.analysis.limits import DEFAULT_MAX_ACTIVATION_BYTES, format_bytes
from archbuilder.cli.common import (
    STDOUT,
    Command,
    UsageError,
    add_gib_limit,
    import_torch,
    load,
    positive,
    refuse_overwriting_input,
    to_stdout,
)
from archbuilder.core.errors import escape
from archbuilder.export import (
    DEFAULT_OPSET,
    OPSETS,
    ExportError,
    NoiseCalibrationWarning,
    check_packages,
)
from archbuilder.export import format_for as export_format_for

__all__ = ["register"]

NOISE_WARNING = (
    "archbuild export: warning: no --calibration, so int8 activation ranges are calibrated on 64 "
    "uniform-noise images, not on real inputs; pass real images with --calibration FILE.npy"
)


def register(command: Command) -> None:
    export = command("export", "write the eval-mode model as ONNX (.onnx) or torch.export (.pt2)", _export)
    export.add_argument("spec", metavar="SPEC", nargs="?")
    export.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="export the trained model of a checkpoint (archbuilder.save_checkpoint) instead of a SPEC",
    )
    export.add_argument(
        "-o",
        "--output",
        help="output file; its extension picks the format (default: SPEC or FILE with .onnx; -: ONNX to standard output)",
    )
    export.add_argument("--num-classes", type=positive, default=None, help="override num_classes")
    export.add_argument(
        "--opset",
        type=int,
        choices=list(OPSETS),
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"ONNX opset, {OPSETS.start} to {OPSETS.stop - 1} (default %(default)s)",
    )
    add_gib_limit(
        export,
        "--max-activation-gib",
        DEFAULT_MAX_ACTIVATION_BYTES,
        "refuse a model whose traced forward pass needs more activations",
    )
    export.add_argument(
        "--dtype",
        choices=["fp32", "bf16", "int8"],
        default="fp32",
        help="fp32 (default); bf16 (.pt2 only); int8: static quantization, ONNX as QDQ",
    )
    export.add_argument(
        "--no-optimize",
        dest="optimize",
        action="store_false",
        help="ONNX: write the graph as traced (batch norms kept, every parameter an initializer) "
        "instead of optimized (batch norms folded into convs); what archbuild import reads back exactly",
    )
    export.add_argument(
        "--calibration",
        metavar="FILE.npy",
        help="int8: calibration images, an N×C×H×W float array (default: 64 uniform-noise images, with a warning)",
    )


def _export(args: argparse.Namespace) -> int:
    if (args.spec is None) == (args.checkpoint is None):
        raise UsageError("give a SPEC or --checkpoint FILE (one of them)")
    if args.checkpoint is not None and (args.set or args.num_classes is not None):
        raise UsageError("a checkpoint's model is exported as trained: --set and --num-classes don't apply")
    if args.calibration is not None and args.dtype != "int8":
        raise UsageError("--calibration applies to --dtype int8")
    source = args.spec if args.spec is not None else args.checkpoint
    if args.output == STDOUT:  # ONNX on standard output
        _refuse_bf16_onnx(args, "onnx")
        check_packages("onnx", args.dtype)  # before the spec is loaded and built
        specs = []
        to_stdout(lambda path: specs.append(_write(args, path)), ".onnx")
        print(f"wrote ONNX opset {args.opset} to standard output ({_shape(specs[0])})", file=sys.stderr)
        return 0
    output = Path(args.output) if args.output else Path(source).with_suffix(".onnx")
    refuse_overwriting_input(source, output)
    try:
        kind = export_format_for(output)  # before any work, as for render
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _refuse_bf16_onnx(args, kind)
    if not args.optimize and kind != "onnx":
        raise UsageError("--no-optimize applies to ONNX (.onnx) exports")
    if not output.absolute().parent.is_dir():  # found now rather than after a slow export
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), str(output))
    check_packages(kind, args.dtype)  # so is a package the format or the dtype needs
    spec = _write(args, output)
    what = f"ONNX opset {args.opset}" if kind == "onnx" else "torch.export program"
    what += "" if args.dtype == "fp32" else f", {args.dtype}"
    print(escape(f"wrote {output} ({what}, {_shape(spec)})"))
    return 0


def _refuse_bf16_onnx(args: argparse.Namespace, kind: str) -> None:
    if args.dtype == "bf16" and kind == "onnx":
        from archbuilder.builder.precision_export import BF16_ONNX_REASON

        raise UsageError(BF16_ONNX_REASON)


def _write(args: argparse.Namespace, output: Path):
    """Export the SPEC or checkpoint to ``output``; the spec exported."""
    import_torch("export")  # a clear error where torch cannot be loaded
    from archbuilder.export import export_model

    options = dict(
        opset=args.opset,
        max_activation_bytes=int(args.max_activation_gib * 2**30),
        dtype=args.dtype,
        calibration=_calibration(args.calibration),
        optimize=args.optimize,
    )
    with _noise_calibration_said():
        if args.checkpoint is not None:
            model = _load_checkpoint_model(args.checkpoint)
            export_model(model, output, **options)
            return model.spec
        spec = load(args, args.spec)
        export_model(spec, output, num_classes=args.num_classes, **options)
        return spec


@contextmanager
def _noise_calibration_said() -> Iterator[None]:
    """The exporter's NoiseCalibrationWarning as one line in the command's words, when it is
    raised (the packages checked and the model built, before calibrating); other warnings as usual."""
    show = warnings.showwarning

    def said(message, category, *args, **kwargs):
        if issubclass(category, NoiseCalibrationWarning):
            print(NOISE_WARNING, file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", NoiseCalibrationWarning)
        warnings.showwarning = said
        yield


def _shape(spec) -> str:
    return f"input batch×{spec.input.channels}×{spec.input.height}×{spec.input.width}"


MAX_CALIBRATION_BYTES = 2 << 30  # 3,500 float32 images of 3×224×224; calibration needs hundreds


def _calibration(path: str | None):
    """Batches of 8 from a .npy array of images, or None (the exporter's noise)."""
    if path is None:
        return None
    import torch

    images = _read_images(path, MAX_CALIBRATION_BYTES)
    return list(torch.from_numpy(images.astype("float32")).split(8))


def _read_images(path: str, max_bytes: int):
    """The N×C×H×W float array of the regular .npy file ``path``: its header read and checked
    (dtype, rank, declared size against ``max_bytes`` and against the file) before any data is;
    never a pickle. ExportError saying what is wrong."""
    import numpy
    from numpy.lib import format as npy

    from archbuilder.core.files import UnreadableFile, open_regular

    try:
        with open_regular(path) as file:
            headers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
            version = npy.read_magic(file)
            if version not in headers:
                raise ExportError(f"{path}: .npy format version {version}; give a version 1 or 2 file")
            shape, fortran, dtype = headers[version](file)
            _check_images(path, shape, dtype, max_bytes, os.fstat(file.fileno()).st_size - file.tell())
            count = math.prod(shape)
            images = numpy.fromfile(file, dtype=dtype, count=count)
    except UnreadableFile as exc:
        raise ExportError(f"{exc.path}: cannot read calibration images: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # numpy's words for a header that is not one
        raise ExportError(f"{path}: cannot read calibration images: {escape(str(exc))[:200]}") from None
    if images.size != count:
        raise ExportError(f"{path}: the calibration array ends after {images.size:,} of its {count:,} values")
    return images.reshape(shape, order="F" if fortran else "C")


def _check_images(path: str, shape: tuple[int, ...], dtype, max_bytes: int, left: int) -> None:
    """What the .npy header declares, checked before anything is allocated."""
    if len(shape) != 4 or dtype.kind != "f" or min(shape) < 1:
        shown = f"a {dtype.str if dtype.kind != 'V' else 'structured'} array of shape {shape}"
        raise ExportError(f"{path}: calibration images must be an N×C×H×W float array, not {escape(shown)}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > max_bytes:
        raise ExportError(
            f"{path}: {shape} of {dtype.name} is {format_bytes(declared)}, over the limit of "
            f"{format_bytes(max_bytes)} for calibration images; pass fewer images"
        )
    if declared > left:
        raise ExportError(
            f"{path}: the header declares {declared:,} bytes of images; the file holds {left:,}"
        )


def _load_checkpoint_model(path: str):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path).model
    except CheckpointError as exc:  # its message names the file
        raise ExportError(str(exc)) from None
