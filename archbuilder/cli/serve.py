"""``serve``: the interactive page of a spec on a local server, redrawn on every save."""

from __future__ import annotations

import argparse
import sys
import webbrowser

from archbuilder.cli.common import Command, UsageError
from archbuilder.cli.render import add_overlay_options, color_by
from archbuilder.core.escaping import for_terminal

__all__ = ["register"]


def register(command: Command) -> None:
    serve = command(
        "serve",
        "serve the interactive page of SPEC on this machine, redrawn in the browser on every save "
        "of SPEC or a file it extends (Ctrl-C stops)",
        _serve,
    )
    serve.add_argument("spec", metavar="SPEC", help="a spec file or a shipped spec's name (archbuild list)")
    serve.add_argument(
        "--compare",
        metavar="OTHER",
        help="draw OTHER instead, with what changed from SPEC marked (as render --compare); both watched",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8000,
        metavar="N",
        help="port to listen on (default 8000; 0: any free one)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="H",
        help="address to listen on (default 127.0.0.1, this machine only; any other is reachable by "
        "others on the network, and warned about)",
    )
    serve.add_argument("--open", action="store_true", help="open the page in the default browser")
    add_overlay_options(serve)


def _serve(args: argparse.Namespace) -> int:
    from archbuilder.serve.build import BuildRequest
    from archbuilder.serve.server import LOOPBACK_HOSTS, ServeOptions, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, not {args.port}")
    if args.host not in LOOPBACK_HOSTS:
        print(
            for_terminal(
                f"archbuild serve: warning: listening on {args.host}: anyone who can reach this machine "
                "can read the page and the spec lines it shows"
            ),
            file=sys.stderr,
        )
    request = BuildRequest(
        spec=args.spec,
        compare=args.compare,
        overrides=tuple(args.set or ()),
        max_ops=args.max_ops,
        allowed_roots=tuple(args.allow_path or ()),
        color_by=color_by(args),
        overlay=args.overlay,
    )

    def ready(url: str) -> None:
        print(for_terminal(f"serving {args.compare or args.spec} at {url} (Ctrl-C stops)"), flush=True)
        if args.open:
            webbrowser.open(url)

    serve(request, ServeOptions(host=args.host, port=args.port), on_ready=ready)
    return 0
