"""The ``archbuild`` parser: global options, one subcommand group per module, exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

from archbuilder.cli.common import TorchUnavailable, UsageError, positive
from archbuilder.core.errors import RenderError, SpecError, UnsupportedFormat, UnsupportedOnThisCPU, escape
from archbuilder.core.extras import MissingExtra, missing_extra
from archbuilder.core.files import cancelled_by
from archbuilder.core.version import __version__
from archbuilder.spec.budget import DEFAULT_MAX_OPS

__all__ = ["main"]

# Subcommand groups (modules of archbuilder.cli) in the order `archbuild --help` lists them, with
# the commands each registers: a command line imports only its command's module (start-up time).
GROUPS = {
    "catalog": ("list", "show", "new"),
    "check": ("validate", "summary"),
    "build": ("build",),
    "render": ("render",),
    "diff": ("diff",),
    "emit": ("emit", "schema"),
    "export": ("export",),
    "search": ("space", "sample"),
    "import_": ("import",),
    "bench": ("bench",),
    "profile": ("profile",),
    "serve": ("serve",),
}
GROUP_OF = {command: group for group, commands in GROUPS.items() for command in commands}


def group_module(name: str) -> ModuleType:
    return importlib.import_module(f"archbuilder.cli.{name}")


def groups_needed(argv: Sequence[str]) -> list[str]:
    """The groups a command line needs registered to parse exactly as with all of them.

    The first word that is not ``--debug`` decides: a command needs its own group, ``--version``
    none (argparse prints it and exits there); anything else (help, a mistyped command, an
    abbreviated option) gets every group, so that help and usage errors list every command.
    """
    for word in argv:
        if word == "--debug":
            continue
        if word == "--version":
            return []
        if word in GROUP_OF:
            return [GROUP_OF[word]]
        break
    return list(GROUPS)


def _parser(groups: Sequence[str] = tuple(GROUPS)) -> argparse.ArgumentParser:
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
    common.add_argument(
        "--max-ops",
        type=positive,
        default=DEFAULT_MAX_OPS,
        metavar="N",
        help=f"refuse a spec expanding to more ops than this (default {DEFAULT_MAX_OPS:,})",
    )
    common.add_argument(
        "--allow-path",
        action="append",
        metavar="DIR",
        help=(
            "let `extends`, and an ONNX model's external data (`import`), read files under DIR too "
            "(default: only under the spec's or the model's folder, and the shipped specs; repeatable)"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run, command_parser=sub)
        return sub

    for group in groups:
        group_module(group).register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = _parser(groups_needed(argv)).parse_args(argv)
    except KeyboardInterrupt:
        return 130
    interrupted = threading.Event()
    previous = _catch_interrupts(interrupted)
    try:
        with cancelled_by(interrupted):
            status = args.run(args)
        if interrupted.is_set():  # a library swallowed the KeyboardInterrupt
            raise KeyboardInterrupt
        return status
    except BrokenPipeError:
        # The reader went away (`archbuild summary --json | head`): not worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, UnsupportedFormat) as exc:
        args.command_parser.print_usage(sys.stderr)
        print(escape(f"archbuild {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archbuild: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        missing = _missing_extra(exc, args.command)
        if missing is not None:  # an optional package not installed: what to install, exit 2
            print(escape(f"archbuild: error: {missing}")[:2000], file=sys.stderr)
            return 2
        if isinstance(exc, UnsupportedOnThisCPU):  # the machine can't: what to use instead, exit 2
            print(escape(f"archbuild: error: {exc}")[:2000], file=sys.stderr)
            return 2
        print(_message(exc), file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _missing_extra(exc: Exception, command: str) -> MissingExtra | None:
    """The MissingExtra ``exc`` is, or stands for: an ImportError (or an error raised from one)
    of a module an extra installs, such as quantize's ImportError when torchao is missing."""
    if isinstance(exc, MissingExtra):
        return exc
    if isinstance(exc, (SpecError, RenderError, OSError, ValueError, TypeError, MemoryError)):
        return None  # what they say is the error, whatever they were raised from
    return missing_extra(exc, needed_for=f"archbuild {command}")


def _message(exc: Exception) -> str:
    """One line (or a SpecError's list) for an error, control characters escaped."""
    if isinstance(exc, SpecError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return escape(f"archbuild: error: cannot write {exc.filename}: {exc.strerror}")
    if isinstance(exc, (RenderError, OSError, ValueError, TypeError, TorchUnavailable)) or _is_export_error(
        exc
    ):
        return escape(f"archbuild: error: {exc}")[:2000]
    if isinstance(exc, MemoryError):
        return "archbuild: error: out of memory; the spec asks for more than this machine has"
    detail = escape(f"{type(exc).__name__}: {exc}")[:500]
    return f"archbuild: internal error ({detail}); rerun with --debug for a traceback and report it"


def _is_export_error(exc: Exception) -> bool:
    """Whether ``exc`` is an ExportError, without importing the exporters to ask: one raised
    means they are loaded."""
    export = sys.modules.get("archbuilder.export")
    return export is not None and isinstance(exc, export.ExportError)


def _catch_interrupts(interrupted: threading.Event):
    """Make Ctrl-C stop the command even where a library catches KeyboardInterrupt: the flag
    stays set, so no output is renamed into place and the exit status is 130."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    sys.exit(main())
