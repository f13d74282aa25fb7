"""``export``: the eval-mode model as an ONNX file or a torch.export program."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from archbuilder.cli.common import (
    STDOUT,
    Command,
    UsageError,
    gib,
    import_torch,
    load,
    positive,
    refuse_overwriting_input,
    to_stdout,
)
from archbuilder.export import DEFAULT_OPSET, OPSETS, ExportError
from archbuilder.export import format_for as export_format_for
from archbuilder.limits import DEFAULT_MAX_ACTIVATION_BYTES

__all__ = ["register"]


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
    export.add_argument(
        "--max-activation-gib",
        type=gib,
        default=DEFAULT_MAX_ACTIVATION_BYTES / 2**30,
        metavar="GIB",
        help="refuse a model whose traced forward pass needs more activations (default %(default)g GiB)",
    )


def _export(args: argparse.Namespace) -> int:
    if (args.spec is None) == (args.checkpoint is None):
        raise UsageError("give a SPEC or --checkpoint FILE (one of them)")
    if args.checkpoint is not None and (args.set or args.num_classes is not None):
        raise UsageError("a checkpoint's model is exported as trained: --set and --num-classes don't apply")
    source = args.spec if args.spec is not None else args.checkpoint
    if args.output == STDOUT:  # ONNX on standard output
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
    if not output.absolute().parent.is_dir():  # found now rather than after a slow export
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), str(output))
    spec = _write(args, output)
    what = f"ONNX opset {args.opset}" if kind == "onnx" else "torch.export program"
    print(f"wrote {output} ({what}, {_shape(spec)})")
    return 0


def _write(args: argparse.Namespace, output: Path):
    """Export the SPEC or checkpoint to ``output``; the spec exported."""
    import_torch()  # a clear error where torch cannot be loaded
    from archbuilder.export import export_model

    limit = int(args.max_activation_gib * 2**30)
    if args.checkpoint is not None:
        model = _load_checkpoint_model(args.checkpoint)
        export_model(model, output, opset=args.opset, max_activation_bytes=limit)
        return model.spec
    spec = load(args, args.spec)
    export_model(spec, output, num_classes=args.num_classes, opset=args.opset, max_activation_bytes=limit)
    return spec


def _shape(spec) -> str:
    return f"input batch×{spec.input.channels}×{spec.input.height}×{spec.input.width}"


def _load_checkpoint_model(path: str):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path).model
    except CheckpointError as exc:  # its message names the file
        raise ExportError(str(exc)) from None
