"""``build``: instantiate the torch model and run one forward pass."""

from __future__ import annotations

import argparse

from archbuilder.analysis.limits import (
    DEFAULT_MAX_ACTIVATION_BYTES,
    DEFAULT_MAX_PARAM_BYTES,
    check_activations,
)
from archbuilder.cli.common import Command, add_gib_limit, import_torch, load, positive
from archbuilder.core.errors import escape

__all__ = ["register"]


def register(command: Command) -> None:
    build = command("build", "build the torch model and run one forward pass", _build)
    build.add_argument("spec", metavar="SPEC")
    build.add_argument("--batch", type=positive, default=2, help="batch size of the random input (default 2)")
    build.add_argument("--no-aux", action="store_true", help="leave out the aux heads")
    build.add_argument("--num-classes", type=positive, default=None, help="override num_classes")
    add_gib_limit(
        build,
        "--max-param-gib",
        DEFAULT_MAX_PARAM_BYTES,
        "refuse to allocate more float32 parameters than this",
    )
    add_gib_limit(
        build,
        "--max-activation-gib",
        DEFAULT_MAX_ACTIVATION_BYTES,
        "refuse a forward pass of --batch samples whose activations exceed this",
    )


def _build(args: argparse.Namespace) -> int:
    from archbuilder.ir import lower

    limit = int(args.max_param_gib * 2**30)
    activations = int(args.max_activation_gib * 2**30)
    spec = load(args, args.spec)
    # Refused before torch is even imported: the batch's forward pass is what asks for memory.
    check_activations(lower(spec), batch=args.batch, max_bytes=activations, file=args.spec)
    torch = import_torch("build")
    from archbuilder.builder import build

    model = build(
        spec,
        aux=not args.no_aux,
        num_classes=args.num_classes,
        max_param_bytes=limit,
        max_activation_bytes=activations,
    )
    spec = model.spec
    x = torch.randn(args.batch, spec.input.channels, spec.input.height, spec.input.width)
    print(escape(f"{spec.name}: {sum(p.numel() for p in model.parameters()):,} parameters"))
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
