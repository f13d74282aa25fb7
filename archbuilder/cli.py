"""``archbuild``: a thin command line over the public Python API.

Exit codes: 0 success, 1 invalid spec (or an output that cannot be produced), 2 usage error.
A bad spec never prints a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from archbuilder import __version__
from archbuilder.errors import SpecError
from archbuilder.export import DEFAULT_OPSET, OPSETS, ExportError
from archbuilder.export import format_for as export_format_for
from archbuilder.files import write_atomic
from archbuilder.limits import DEFAULT_MAX_PARAM_BYTES
from archbuilder.render import (
    DETAILS,
    ENGINES,
    RANKDIRS,
    RenderError,
    UnsupportedFormat,
    format_for,
    render_diagram,
)
from archbuilder.spec import ArchSpec, load_spec
from archbuilder.spec.schema import schema_reference, schema_text
from archbuilder.summary import summarize
from archbuilder.variants import VARIANTS, emit_yaml

__all__ = ["main"]


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit 2)."""


def _load(args: argparse.Namespace, path: str) -> ArchSpec:
    return load_spec(path, overrides=args.set)


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            summary = summarize(_load(args, path))
        except SpecError as exc:
            if args.debug:
                raise
            print(exc, file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok ({summary.model}, {summary.params:,} parameters)")
    return status


def _summary(args: argparse.Namespace) -> int:
    summary = summarize(_load(args, args.spec))
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.table())
    return 0


def _build(args: argparse.Namespace) -> int:
    import torch

    from archbuilder.builder import build

    limit = int(args.max_param_gib * 2**30)
    model = build(
        _load(args, args.spec), aux=not args.no_aux, num_classes=args.num_classes, max_param_bytes=limit
    )
    spec = model.spec
    x = torch.randn(args.batch, spec.input.channels, spec.input.height, spec.input.width)
    print(f"{spec.name}: {sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"input: {tuple(x.shape)}")
    with torch.no_grad():
        print(f"eval output: {tuple(model.eval()(x).shape)}")
        if args.batch < 2:
            print("train output: skipped (batch norm needs a batch of at least 2 in training mode)")
            return 0
        outputs = model.train()(x)
    if isinstance(outputs, torch.Tensor):
        print(f"train output: {tuple(outputs.shape)}")
    else:
        print(f"train output: logits {tuple(outputs.logits.shape)}")
        for name, weight, aux in zip(model.aux_names, model.aux_weights, outputs.aux):
            print(f"  {name} (loss weight {weight}): {tuple(aux.shape)}")
    return 0


def _render(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else Path(args.spec).with_suffix(".svg")
    _refuse_overwriting_input(args.spec, output)
    format_for(output)  # an unsupported extension is a usage error, found before any work
    spec = _load(args, args.spec)
    options = dict(detail=args.detail, shapes=not args.no_shapes, rankdir=args.rankdir, engine=args.engine)
    render_diagram(spec, output, **options)
    print(f"wrote {output} ({args.detail} detail)")
    return 0


def _emit(args: argparse.Namespace) -> int:
    if args.output is not None:
        _refuse_overwriting_input(args.spec, args.output)
    command = " ".join([args.spec, *(f"--set {override}" for override in args.set or ())])
    schema = args.schema if args.schema is not None else schema_reference(args.output)
    text = emit_yaml(_load(args, args.spec), args.variant, source=command, schema=schema or None)
    if args.output is None:
        print(text, end="")
        return 0
    write_atomic(args.output, text.encode())
    print(f"wrote {args.output} ({args.variant} variant of {args.spec})", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    if (args.spec is None) == (args.checkpoint is None):
        raise UsageError("give a SPEC or --checkpoint FILE (one of them)")
    if args.checkpoint is not None and (args.set or args.num_classes is not None):
        raise UsageError("a checkpoint's model is exported as trained: --set and --num-classes don't apply")
    source = args.spec if args.spec is not None else args.checkpoint
    output = Path(args.output) if args.output else Path(source).with_suffix(".onnx")
    _refuse_overwriting_input(source, output)
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
        spec = _load(args, args.spec)
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


def _schema(args: argparse.Namespace) -> int:
    if args.output is None:
        print(schema_text(), end="")
        return 0
    write_atomic(args.output, schema_text().encode())
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _refuse_overwriting_input(spec: str, output: str | Path) -> None:
    if Path(output).resolve() == Path(spec).resolve():
        raise UsageError(f"the output {output} is the input spec; choose another -o")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archbuild",
        description="Describe convolutional architectures as YAML; validate, summarize, build, draw, vary.",
    )
    parser.add_argument("--version", action="version", version=f"archbuilder {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback for errors")
    # Accepted after the command too; SUPPRESS keeps a subcommand from resetting the global flag.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show a traceback")
    common.add_argument(
        "--set",
        action="append",
        metavar="KEY.PATH=VALUE",
        help="override a value after loading, e.g. num_classes=10 or blocks.3a.ch1x1=32 (repeatable)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, run) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run, command_parser=sub)
        return sub

    validate = command("validate", "check specs; exit 1 listing every problem", _validate)
    validate.add_argument("specs", nargs="+", metavar="SPEC", help="spec files")

    summary = command("summary", "per-block output shapes, parameters and MACs", _summary)
    summary.add_argument("spec", metavar="SPEC")
    summary.add_argument("--json", action="store_true", help="machine-readable output")

    build = command("build", "build the torch model and run one forward pass", _build)
    build.add_argument("spec", metavar="SPEC")
    build.add_argument(
        "--batch", type=_positive, default=2, help="batch size of the random input (default 2)"
    )
    build.add_argument("--no-aux", action="store_true", help="leave out the aux heads")
    build.add_argument("--num-classes", type=_positive, default=None, help="override num_classes")
    build.add_argument(
        "--max-param-gib",
        type=float,
        default=DEFAULT_MAX_PARAM_BYTES / 2**30,
        metavar="GIB",
        help="refuse to allocate more float32 parameters than this (default %(default)g GiB)",
    )

    render = command("render", "draw the architecture diagram (.svg, .png, .pdf or .dot)", _render)
    render.add_argument("spec", metavar="SPEC")
    render.add_argument(
        "-o", "--output", help="output file; its extension picks the format (default: SPEC with .svg)"
    )
    render.add_argument(
        "--detail", choices=DETAILS, default="branches", help="level of detail (default branches)"
    )
    render.add_argument("--rankdir", choices=RANKDIRS, default="TB", help="TB: top to bottom (default); LR")
    render.add_argument("--no-shapes", action="store_true", help="leave tensor shapes off the edges")
    render.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="system Graphviz, the embedded one (SVG only), or auto (system if installed)",
    )

    emit = command("emit", "write a variant of a spec as a new spec", _emit)
    emit.add_argument("spec", metavar="SPEC")
    emit.add_argument("--variant", required=True, choices=list(VARIANTS), help="which variant to emit")
    emit.add_argument("-o", "--output", help="output file (default: standard output)")
    emit.add_argument(
        "--schema",
        metavar="REF",
        help="the JSON Schema the first line points editors to ('' for no line; "
        "default: this checkout's schema/archbuilder.schema.json, relative to the output)",
    )

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
    export.add_argument("--num-classes", type=_positive, default=None, help="override num_classes")
    export.add_argument(
        "--opset",
        type=int,
        choices=list(OPSETS),
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"ONNX opset, {OPSETS.start} to {OPSETS.stop - 1} (default %(default)s)",
    )

    schema = command("schema", "print the JSON Schema of the spec format", _schema)
    schema.add_argument("-o", "--output", help="write it to this file instead of standard output")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`archbuild summary --json | head`): not worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, UnsupportedFormat) as exc:
        args.command_parser.print_usage(sys.stderr)
        print(f"archbuild {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (SpecError, RenderError, ExportError, OSError) as exc:
        if args.debug:
            raise
        if isinstance(exc, SpecError):
            print(exc, file=sys.stderr)
        elif isinstance(exc, OSError) and exc.filename:
            print(f"archbuild: error: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        else:
            print(f"archbuild: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
