"""``export``: the eval-mode model as an ONNX file or a torch.export program."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

from archbuilder.cli.common import Command, UsageError, load, positive, refuse_overwriting_input
from archbuilder.export import DEFAULT_OPSET, OPSETS, ExportError
from archbuilder.export import format_for as export_format_for

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
        help="output file; its extension picks the format (default: SPEC or FILE with .onnx)",
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


def _export(args: argparse.Namespace) -> int:
    if (args.spec is None) == (args.checkpoint is None):
        raise UsageError("give a SPEC or --checkpoint FILE (one of them)")
    if args.checkpoint is not None and (args.set or args.num_classes is not None):
        raise UsageError("a checkpoint's model is exported as trained: --set and --num-classes don't apply")
    source = args.spec if args.spec is not None else args.checkpoint
    output = Path(args.output) if args.output else Path(source).with_suffix(".onnx")
    refuse_overwriting_input(source, output)
    try:
        kind = export_format_for(output)  # before any work, as for render
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not output.absolute().parent.is_dir():  # found now rather than after a slow export
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), str(output))
    from archbuilder.export import export_model

    if args.checkpoint is not None:
        model = _load_checkpoint_model(args.checkpoint)
        spec = model.spec
        export_model(model, output, opset=args.opset)
    else:
        spec = load(args, args.spec)
        export_model(spec, output, num_classes=args.num_classes, opset=args.opset)
    shape = f"batch×{spec.input.channels}×{spec.input.height}×{spec.input.width}"
    what = f"ONNX opset {args.opset}" if kind == "onnx" else "torch.export program"
    print(f"wrote {output} ({what}, input {shape})")
    return 0


def _load_checkpoint_model(path: str):
    from archbuilder.builder.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path).model
    except CheckpointError as exc:  # its message names the file
        raise ExportError(str(exc)) from None
