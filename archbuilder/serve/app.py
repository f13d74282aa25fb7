"""The ASGI app: three fixed routes, GET only, for requests addressed to the bound host.

No URL names a file: ``/`` is the page, ``/model.json`` its current data and problems,
``/events`` the stream that says when they changed. Anything else is 404, so there is no path
to traverse and no folder to list. A request whose ``Host`` header is not the address the
server was bound to (DNS rebinding: a hostile site's name resolving to 127.0.0.1) is 421.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any

from archbuilder.core.extras import importing
from archbuilder.render.html import page_document
from archbuilder.serve.live import Live

__all__ = ["HEADERS", "KEEPALIVE_S", "create_app", "host_names"]

with importing("archbuild serve"):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies and browsers from closing the stream
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def host_names(host: str, port: int, also: Collection[str] = ()) -> frozenset[str]:
    """The ``Host`` headers a request to ``host:port`` may carry: the address, and every
    loopback name of it when it is a loopback address (plus ``also``, names of this machine)."""
    hosts = (LOOPBACK if host in LOOPBACK else {host}) | set(also)
    names = {f"[{name}]" if ":" in name else name for name in hosts}
    with_port = {f"{name}:{port}" for name in names}
    return frozenset(with_port | (names if port == 80 else set()))


class HostCheck:
    """ASGI middleware: 421 Misdirected Request unless the Host header is one of ``allowed``."""

    def __init__(self, app: Any, allowed: Callable[[], frozenset[str]]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            if host not in self.allowed():
                response = PlainTextResponse("misdirected request: wrong Host header", 421, headers=HEADERS)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(live: Live, allowed_hosts: Callable[[], frozenset[str]], stopping: Callable[[], bool]) -> Any:
    """The app serving ``live``'s snapshots; event streams end once ``stopping()`` is true."""

    async def page(request: Request) -> Response:
        snapshot = live.snapshot
        return HTMLResponse(page_document(snapshot.model or _empty(), live=True), headers=HEADERS)

    async def model(request: Request) -> Response:
        return Response(live.snapshot.body, media_type="application/json", headers=HEADERS)

    async def events(request: Request) -> Response:
        return StreamingResponse(_stream(live, stopping), media_type="text/event-stream", headers=HEADERS)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/model.json", model, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live.bind(asyncio.get_running_loop())
        yield

    return HostCheck(Starlette(routes=routes, lifespan=lifespan), allowed_hosts)


async def _stream(live: Live, stopping: Callable[[], bool]) -> AsyncIterator[str]:
    """``update`` with the version at once, then at each new snapshot; a comment when quiet."""
    version = live.snapshot.version
    yield f"event: update\ndata: {version}\n\n"
    quiet = 0.0
    while not stopping():
        if await live.changed_since(version, 0.25):
            version = live.snapshot.version
            yield f"event: update\ndata: {version}\n\n"
            quiet = 0.0
        else:
            quiet += 0.25
            if quiet >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0


def _empty() -> dict[str, Any]:
    """The page model before any spec has validated: nothing drawn."""
    nothing = {"params": 0, "macs": 0}
    return {
        **{"name": "", "input": [], "total": nothing, "without_aux": nothing, "body": [], "aux": []},
        **{"files": [], "lines": {}, "families": {}, "removed": [], "compare": None},
    }
