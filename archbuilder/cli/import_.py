"""``import``: a Caffe prototxt or an ONNX file as a spec (and its weights)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archbuilder.cli.common import Command, UsageError, import_torch, refuse_overwriting_input
from archbuilder.core.escaping import for_terminal, for_terminal_lines

__all__ = ["register"]


def register(command: Command) -> None:
    sub = command(
        "import", "write a Caffe .prototxt or an .onnx file as a spec (weights with --weights)", _import
    )
    sub.add_argument("file", metavar="FILE", help="a .prototxt (Caffe's text format) or an .onnx file")
    sub.add_argument("-o", "--output", help="the spec to write (default: standard output)")
    sub.add_argument(
        "--weights",
        metavar="OUT.pt",
        help="also write the weights as a state_dict (from an .onnx, or a .prototxt's --caffemodel)",
    )
    sub.add_argument(
        "--caffemodel", metavar="FILE", help="Caffe's binary weights for the .prototxt (read without Caffe)"
    )
    sub.add_argument("--partial", action="store_true", help="import up to the first unsupported op")
    sub.add_argument("--input", metavar="C,H,W", type=_shape, help="input shape, where the file writes none")
    sub.add_argument(
        "--phase", default="TRAIN", choices=["TRAIN", "TEST"], help="Caffe phase (default TRAIN)"
    )
    sub.add_argument("--name", help="model name (default: the file's)")


def _shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not C,H,W: {text!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"not three positive integers C,H,W: {text!r}")
    return values  # type: ignore[return-value]


def _import(args: argparse.Namespace) -> int:
    from archbuilder.importers import ImportFailure, import_model

    if args.set:
        raise UsageError("--set applies to specs; edit the imported spec instead")
    prototxt = Path(args.file).suffix.lower() == ".prototxt"
    for output in (args.output, args.weights):
        if output is not None:
            refuse_overwriting_input(args.file, output)
            if args.caffemodel is not None:
                refuse_overwriting_input(args.caffemodel, output)
    if args.caffemodel is not None and not prototxt:
        raise UsageError("--caffemodel goes with a .prototxt (an .onnx file holds its own weights)")
    if args.weights is not None and prototxt and args.caffemodel is None:
        raise UsageError(
            "a .prototxt holds no weights (Caffe keeps them in a .caffemodel); "
            "give it with --caffemodel FILE, or drop --weights"
        )
    if args.weights is not None:
        import_torch("import --weights")  # a state_dict is torch's: asked before anything is read
    try:
        result = import_model(
            args.file,
            partial=args.partial,
            input_shape=args.input,
            phase=args.phase,
            name=args.name,
            caffemodel=args.caffemodel,
            allowed_roots=args.allow_path or [],
        )
    except ImportFailure as exc:
        if args.debug:
            raise
        print(for_terminal_lines(str(exc)), file=sys.stderr)
        return 1
    if args.output is None:
        print(result.to_yaml(), end="")
    else:
        result.write(args.output)
    if args.weights is not None:
        result.save_weights(args.weights)
    _report(args, result)
    return 0


def _report(args: argparse.Namespace, result) -> None:
    from archbuilder.ir import lower

    params, _ = lower(result.spec).total()
    blocks = sum(1 for layer in result.spec.blocks if layer.kind in ("inception", "branches"))
    what = [
        f"{params:,} parameters",
        f"{blocks} multi-branch blocks",
        f"{len(result.spec.aux_heads)} aux heads",
    ]
    where = f"wrote {args.output}" if args.output else "imported"
    lines = [f"{where} ({', '.join(what)}) from {args.file}"]
    if args.weights:
        lines.append(f"wrote {args.weights} (state_dict for archbuilder.build of the spec)")
    if result.stopped:
        lines.append(f"partial: stopped before {result.stopped}")
    lines += [f"note: {note}" for note in result.notes]
    for line in lines:  # names from the imported file: shown, never obeyed by the terminal
        print(for_terminal(line), file=sys.stderr)
