"""The ``archbuild`` parser: global options, one subcommand group per module, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from archbuilder import __version__
from archbuilder.cli import bench, build, check, emit, export, render
from archbuilder.cli.common import UsageError
from archbuilder.errors import SpecError
from archbuilder.export import ExportError
from archbuilder.render import RenderError, UnsupportedFormat

__all__ = ["main"]

# Subcommand groups in the order `archbuild --help` lists them.
GROUPS = (check, build, render, emit, export, bench)


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

    def command(name: str, help: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run, command_parser=sub)
        return sub

    for group in GROUPS:
        group.register(command)
    return parser


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
