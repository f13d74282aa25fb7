"""``profile``: each block's and layer's real time on this machine, as a table and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from archbuilder.analysis.limits import DEFAULT_MAX_ACTIVATION_BYTES, check_activations
from archbuilder.cli.common import Command, load, positive, refuse_overwriting_input
from archbuilder.core.escaping import for_terminal, for_terminal_lines
from archbuilder.core.files import write_atomic

__all__ = ["register"]


def register(command: Command) -> None:
    profile = command(
        "profile",
        "time each block and layer of SPEC's model on this machine (forward, or forward + backward "
        "with --train); print each block's share and write JSON that render/serve --overlay read",
        _profile,
    )
    profile.add_argument("spec", metavar="SPEC", help="a spec file or a shipped spec's name (archbuild list)")
    profile.add_argument(
        "--batch", type=positive, default=1, help="batch size of the random input (default 1)"
    )
    profile.add_argument(
        "--dtype", choices=("fp32", "bf16"), default="fp32", help="weights and input (default fp32)"
    )
    profile.add_argument(
        "--train",
        action="store_true",
        help="time forward + backward in training mode, aux heads included (default: an eval forward)",
    )
    profile.add_argument(
        "--repeats",
        type=positive,
        default=10,
        help="timed steps; each figure is the mean of their middle half (default 10)",
    )
    profile.add_argument("-o", "--output", metavar="FILE", help="write the profile as JSON to FILE")


def _profile(args: argparse.Namespace) -> int:
    from archbuilder.ir import lower

    if args.output:
        refuse_overwriting_input(args.spec, Path(args.output))
    spec = load(args, args.spec)
    check_activations(lower(spec), batch=args.batch, max_bytes=DEFAULT_MAX_ACTIVATION_BYTES, file=args.spec)
    from archbuilder.builder.profile import profile  # without torch: the extra to install, exit 2

    result = profile(spec, batch=args.batch, dtype=args.dtype, train=args.train, repeats=args.repeats)
    print(for_terminal_lines(result.table()))
    if args.output:
        write_atomic(args.output, result.to_json().encode())
        print(for_terminal(f"wrote {args.output}"))
    return 0
